"""tracr-hist: a tracr-compiled transformer that counts how often each token occurs.

DOC
"""

from __future__ import annotations

from typing import ClassVar

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tasks.base import TaskData, register_task
from tasks.tracr_base import GTEdge, TracrTask, correct_log_prob


@register_task("tracr-hist")
class TracrHist(TracrTask):
    description = "tracr-compiled model counting each token's occurrences in 4 tokens over {a,b,c}"
    metric_description = (
        "mean log-probability of the correct count over the 4 output positions; "
        "higher = more correct (0 is perfectly confident)"
    )
    program = "hist"
    seq_len = 4
    max_examples = 3**4
    default_n = 3**4

    GROUND_TRUTH: ClassVar[tuple[GTEdge, ...]] = (
        GTEdge("embed", "a0.h0.q", "answers", True, "tokens (and one)"),
        GTEdge("embed", "a0.h0.k", "answers", True, "tokens"),
        GTEdge("embed", "a0.h0.k", "bos", False, "tokens:BOS, BOS's always-on score"),
        GTEdge("embed", "a0.h0.v", "bos", False, "the BOS indicator, whose share is 1/(hist+1)"),
        GTEdge("a0.h0", "m0", "answers", True, "1/(hist+1)"),
        GTEdge("embed", "m0", "answers", False, "one (bias)"),
        GTEdge("m0", "logits", "answers", True, "hist"),
    )

    def _targets(self, seqs: list[tuple]) -> tuple[Int[Tensor, "n pos"], dict[str, Tensor]]:
        out = self.meta["output_encoding"]
        answers = torch.tensor([[0] + [out[str(s.count(t))] for t in s] for s in seqs])
        return answers, {}

    def metric(
        self, logits: Float[Tensor, "*k n pos vocab"], data: TaskData
    ) -> Float[Tensor, "*k n"]:
        return correct_log_prob(logits, data)
