"""tracr-pair-balance: a tracr-compiled transformer giving the running parenthesis balance.

DOC
"""

from __future__ import annotations

from typing import ClassVar

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tasks.base import TaskData, register_task
from tasks.tracr_base import GTEdge, TracrTask, numeric_divergence, numeric_neg_mse


def pair_balance(seq: tuple) -> list[float]:
    """Per position p: (number of "(" minus number of ")" in tokens 1..p) / p."""
    out, bal = [], 0
    for i, t in enumerate(seq):
        bal += (t == "(") - (t == ")")
        out.append(bal / (i + 1))
    return out


@register_task("tracr-pair-balance")
class TracrPairBalance(TracrTask):
    description = (
        'tracr-compiled model giving the running fraction of "(" minus ")" in 4 tokens over {(,),x}'
    )
    metric_description = (
        "negative mean squared error of the numeric output against the true balance, over the 4 "
        "output positions; higher = more correct (0 is exact)"
    )
    program = "pair_balance"
    seq_len = 4
    max_examples = 3**4
    default_n = 3**4

    GROUND_TRUTH: ClassVar[tuple[GTEdge, ...]] = (
        GTEdge("embed", "m0", "answers", True, "tokens"),
        GTEdge("m0", "a1.h0.v", "answers", True, "bools_open"),
        GTEdge("m0", "a1.h1.v", "answers", True, "bools_close"),
        GTEdge("embed", "a1.h0.q", "answers", False, "indices (and one)"),
        GTEdge("embed", "a1.h0.k", "answers", False, "indices"),
        GTEdge("embed", "a1.h1.q", "answers", False, "indices (and one)"),
        GTEdge("embed", "a1.h1.k", "answers", False, "indices"),
        GTEdge("a1.h0", "m1", "answers", True, "opens"),
        GTEdge("a1.h1", "m1", "answers", True, "closes"),
        GTEdge("m1", "logits", "answers", True, "pair_balance"),
    )

    def _targets(self, seqs: list[tuple]) -> tuple[Int[Tensor, "n pos"], dict[str, Tensor]]:
        target = torch.zeros(len(seqs), self.n_pos)
        target[:, 1:] = torch.tensor([pair_balance(s) for s in seqs])
        return torch.zeros(len(seqs), self.n_pos, dtype=torch.long), {"target": target}

    def metric(self, logits: Float[Tensor, "*k n pos 1"], data: TaskData) -> Float[Tensor, "*k n"]:
        return numeric_neg_mse(logits, data)

    def divergence(
        self,
        logits: Float[Tensor, "*k n pos 1"],
        clean_logits: Float[Tensor, "n pos 1"],
        data: TaskData,
    ) -> Float[Tensor, "*k n"]:
        return numeric_divergence(logits, clean_logits, data)
