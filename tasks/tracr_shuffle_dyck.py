"""tracr-shuffle-dyck: a tracr-compiled transformer that tells whether parentheses balance.

DOC
"""

from __future__ import annotations

from typing import ClassVar

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tasks.base import TaskData, register_task
from tasks.tracr_base import GTEdge, TracrTask, correct_log_prob


def balanced(seq: tuple) -> bool:
    """Whether the "(" and ")" of ``seq`` balance (no prefix closes more than it opened)."""
    bal = 0
    for t in seq:
        bal += (t == "(") - (t == ")")
        if bal < 0:
            return False
    return bal == 0


@register_task("tracr-shuffle-dyck")
class TracrShuffleDyck(TracrTask):
    description = "tracr-compiled model telling whether the parentheses of 4 tokens over {(,),x} balance"
    metric_description = (
        "mean log-probability of the correct verdict (balanced or not) over the 4 output "
        "positions; higher = more correct (0 is perfectly confident)"
    )
    program = "shuffle_dyck"
    seq_len = 4
    max_examples = 3**4
    default_n = 3**4

    GROUND_TRUTH: ClassVar[tuple[GTEdge, ...]] = ()

    def _targets(self, seqs: list[tuple]) -> tuple[Int[Tensor, "n pos"], dict[str, Tensor]]:
        out = self.meta["output_encoding"]
        answers = torch.tensor([[0] + [out[str(balanced(s))]] * len(s) for s in seqs])
        return answers, {}

    def metric(
        self, logits: Float[Tensor, "*k n pos vocab"], data: TaskData
    ) -> Float[Tensor, "*k n"]:
        return correct_log_prob(logits, data)
