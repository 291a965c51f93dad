"""tracr-sort-unique: a tracr-compiled transformer that sorts distinct tokens.

DOC
"""

from __future__ import annotations

import itertools
from typing import ClassVar

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tasks.base import TaskData, register_task
from tasks.tracr_base import GTEdge, TracrTask, correct_log_prob
from tasks.tracr_programs import PROGRAMS


@register_task("tracr-sort-unique")
class TracrSortUnique(TracrTask):
    description = "tracr-compiled model sorting 4 distinct tokens drawn from {1,...,5}"
    metric_description = (
        "mean log-probability of the correct sorted token over the 4 output positions; "
        "higher = more correct (0 is perfectly confident)"
    )
    program = "sort_unique"
    seq_len = 4
    max_examples = 5 * 4 * 3 * 2
    default_n = 5 * 4 * 3 * 2

    GROUND_TRUTH: ClassVar[tuple[GTEdge, ...]] = (
        GTEdge("embed", "a0.h0.q", "answers", True, "tokens (and one)"),
        GTEdge("embed", "a0.h0.k", "answers", True, "tokens"),
        GTEdge("embed", "a0.h0.k", "bos", False, "tokens:BOS, BOS's always-on score"),
        GTEdge("embed", "a0.h0.v", "bos", False, "the BOS indicator, share 1/(target_pos+1)"),
        GTEdge("a0.h0", "m0", "answers", True, "1/(target_pos+1)"),
        GTEdge("embed", "m0", "answers", False, "one (bias)"),
        GTEdge("m0", "a1.h0.k", "answers", True, "target_pos"),
        GTEdge("embed", "a1.h0.q", "answers", False, "indices (and one)"),
        GTEdge("embed", "a1.h0.v", "answers", True, "tokens"),
        GTEdge("a1.h0", "logits", "answers", True, "sort"),
    )

    def inputs(self) -> list[tuple]:
        """Every sequence of ``seq_len`` distinct tokens (the program needs unique keys)."""
        return list(itertools.permutations(PROGRAMS[self.program].vocab, self.seq_len))

    def _targets(self, seqs: list[tuple]) -> tuple[Int[Tensor, "n pos"], dict[str, Tensor]]:
        out = self.meta["output_encoding"]
        answers = torch.tensor([[0] + [out[str(t)] for t in sorted(s)] for s in seqs])
        return answers, {}

    def metric(
        self, logits: Float[Tensor, "*k n pos vocab"], data: TaskData
    ) -> Float[Tensor, "*k n"]:
        return correct_log_prob(logits, data)
