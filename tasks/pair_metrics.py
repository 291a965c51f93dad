"""Task metrics of prompt-pair tasks, chosen by name (``--metric``); small pure functions.

Each reads the logits at each example's answer position (``data.extra["answer_pos"]``, the last
real token of the clean prompt) and returns one value per example, higher = more of the clean
behaviour:

- ``logit-diff``: mean logit of the answers minus mean logit of the wrong answers (the IOI
  metric of Wang et al. 2022; auto-circuit's ``logit_diff_percent`` uses the same difference);
- ``logprob``: mean log-probability of the answers;
- ``kl``: minus KL(clean || patched) of the next-token distributions (ACDC's metric, sign
  flipped so that higher is better); needs the clean model's distribution, stored in
  ``data.extra["clean_logp"]`` by the task.

Answer sets are ``[n, A]`` token ids padded with -1 (``extra["answer_set"]``,
``extra["wrong_set"]``), so a prompt may have several answers (auto-circuit's files).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tasks.base import TaskData


def at_answer(logits: Float[Tensor, "*k n pos v"], data: TaskData) -> Float[Tensor, "*k n v"]:
    """The logits at each example's answer position."""
    pos = data.extra["answer_pos"].to(logits.device)
    n, V = logits.shape[-3], logits.shape[-1]
    idx = pos.view(n, 1, 1).expand(*logits.shape[:-3], n, 1, V)
    return logits.gather(-2, idx).squeeze(-2)


def set_mean(values: Float[Tensor, "*k n v"], ids: Int[Tensor, "n a"]) -> Float[Tensor, "*k n"]:
    """Mean of ``values`` over each example's token ids (``-1`` entries ignored)."""
    ids = ids.to(values.device)
    valid = (ids >= 0).to(values.dtype)
    got = values.gather(-1, ids.clamp(min=0).expand(*values.shape[:-1], ids.shape[-1]))
    return (got * valid).sum(-1) / valid.sum(-1).clamp(min=1)


def logit_diff(logits: Tensor, data: TaskData) -> Tensor:
    x = at_answer(logits, data)
    return set_mean(x, data.extra["answer_set"]) - set_mean(x, data.extra["wrong_set"])


def logprob(logits: Tensor, data: TaskData) -> Tensor:
    x = torch.log_softmax(at_answer(logits, data), dim=-1)
    return set_mean(x, data.extra["answer_set"])


def neg_kl(logits: Tensor, data: TaskData) -> Tensor:
    logp = torch.log_softmax(at_answer(logits, data), dim=-1)
    clean = data.extra["clean_logp"].to(logp)
    return -(clean.exp() * (clean - logp)).sum(-1)


@dataclass(frozen=True)
class PairMetric:
    fn: Callable[[Tensor, TaskData], Tensor]
    description: str
    needs_wrong: bool = False
    needs_clean: bool = False


PAIR_METRICS: dict[str, PairMetric] = {
    "logit-diff": PairMetric(
        logit_diff, "logit of the answer minus logit of the wrong answer", needs_wrong=True
    ),
    "logprob": PairMetric(logprob, "log-probability of the answer"),
    "kl": PairMetric(neg_kl, "minus KL(clean || patched) at the answer position", needs_clean=True),
}
DEFAULT_METRIC = "logit-diff"


def get_pair_metric(name: str) -> PairMetric:
    """The metric called ``name``; ValueError naming the choices (and the closest) otherwise."""
    if name not in PAIR_METRICS:
        close = difflib.get_close_matches(name, PAIR_METRICS, n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ValueError(f"unknown metric {name!r}.{hint} Choose one of {sorted(PAIR_METRICS)}")
    return PAIR_METRICS[name]
