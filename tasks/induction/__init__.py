"""Induction on a small learned model (offline: the checkpoint ships with the package).

Model: a 2-layer attention-only ``HookedModel`` (:mod:`patching.hooked`) without normalisation,
4 heads per layer, trained by ``python -m tasks.induction.train`` on ``[BOS, prefix, s, s]``
sequences (:mod:`tasks.induction.data`; configuration, losses and timing in ``train_record.json``).

Task data: a clean sequence repeats a segment of ``L`` distinct tokens (``L`` from 4 to 12,
right-aligned after a random prefix); its corrupted partner ``[BOS, prefix', a, b]`` is fresh
throughout and its second segment never occurred earlier, so nothing in it is predictable by
induction. The answer positions are the repeat's tokens except its last (whose next token lies
beyond the context); the position before the repeat is not one, since the repeat's first token
is not predictable. The metric is the log-probability of the correct next token averaged over
the answer positions (higher = more of the clean behaviour).

Ground truth: :mod:`tasks.induction.groundtruth` (previous-token and induction heads chosen by
attention-pattern scores on held-out data, recorded in ``groundtruth.json``).
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import ClassVar

import torch
from jaxtyping import Float
from torch import Tensor

from patching.graph import EdgeGraph
from tasks.base import Task, TaskData, register_task
from tasks.induction import groundtruth
from tasks.induction.data import (
    ModelConfig,
    answer_mask,
    generator,
    next_tokens,
    non_repeating,
    repeated,
)
from tasks.induction.model import CHECKPOINT, HERE, TRAIN_RECORD


@register_task("induction")
class InductionTask(Task):
    """Induction (``... A B ... A -> B``) on the shipped 2-layer attention-only model."""

    description: ClassVar[str] = "induction on a 2-layer attention-only model (repeated segments)"
    metric_description: ClassVar[str] = (
        "log-probability of the correct repeated token, averaged over the repeat's predictable "
        "positions; higher = more of the clean behaviour"
    )
    ablations: ClassVar[tuple[str, ...]] = ("resample",)
    default_ablation: ClassVar[str] = "resample"
    max_examples: ClassVar[int] = 10_000
    default_n: ClassVar[int] = 64
    per_position: ClassVar[bool] = False

    @cached_property
    def config(self) -> ModelConfig:
        """The model and sequence shape, from the training record (defaults if it is missing)."""
        if not TRAIN_RECORD.exists():
            return ModelConfig()
        return ModelConfig(**json.loads(TRAIN_RECORD.read_text())["model_config"])

    def unavailable_reason(self) -> str | None:
        missing = [p.name for p in (CHECKPOINT, TRAIN_RECORD, groundtruth.RECORD) if not p.exists()]
        if missing:
            return f"missing {', '.join(missing)} in {HERE}; run `python -m tasks.induction.train`"
        return None

    def load_model(self, device: str = "cpu"):
        reason = self.unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"cannot load the induction model: {reason}")
        from models import resolve

        return resolve("induction").load(device)

    def _make_data(self, n: int, seed: int) -> TaskData:
        cfg = self.config
        gen = generator(seed, "task")
        clean, seg_len = repeated(n, cfg, gen)
        corrupted = non_repeating(seg_len, cfg, gen)
        mask = answer_mask(seg_len, cfg)
        answers = torch.where(mask, next_tokens(clean), torch.zeros_like(clean))
        return TaskData(clean, corrupted, mask, answers, extra={"seg_len": seg_len})

    def metric(
        self, logits: Float[Tensor, "*k n pos vocab"], data: TaskData
    ) -> Float[Tensor, "*k n"]:
        logp = torch.log_softmax(logits, dim=-1)
        answers = data.answers.expand(logp.shape[:-1])
        correct = logp.gather(-1, answers[..., None])[..., 0]  # [*k, n, pos]
        mask = data.answer_mask.to(correct.dtype)
        return (correct * mask).sum(-1) / mask.sum(-1)

    def heads(self) -> tuple[list[str], list[str]]:
        """``(previous-token heads, induction heads)`` as recorded in ``groundtruth.json``."""
        record = groundtruth.load_record()
        return record["prev_token_heads"], record["induction_heads"]

    def _ground_truth(self, graph: EdgeGraph, ablation: str) -> set[str]:
        cfg = self.config
        if (graph.n_layers, graph.n_heads) != (cfg.n_layers, cfg.n_heads):
            raise ValueError(
                f"the induction ground truth is for {cfg.n_layers} layers x {cfg.n_heads} heads; "
                f"got a graph of {graph.n_layers} x {graph.n_heads}"
            )
        prev, induction = self.heads()
        return groundtruth.circuit_edges(graph, prev, induction)
