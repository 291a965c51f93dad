"""tracr-proportion: a tracr-compiled transformer that outputs the running fraction of "x" tokens.

Inputs are every sequence of 4 tokens over {w, x, y, z} after BOS (256 inputs, 5 positions);
the model was compiled (causal) for up to 5 tokens. The output at position p (1..4) is the
fraction of the tokens at positions 1..p that are "x" (``lib.make_frac_prevs``, inclusive),
read from the one numeric output direction (``d_vocab_out = 1``).

Where the compiled model computes each step (2 blocks of one head; a0 and m1 have zero weights):

- m0: ``is_x = numerical(tokens == "x")`` (reads ``tokens:x``).
- a1.h0: ``frac_prevs = numerical Aggregate(Select(indices, indices, LEQ), is_x)``: query
  ``indices`` (plus ``one``), key ``indices`` (plus ``tokens:BOS``), value ``is_x``; the mean
  over the selected keys is the fraction.
- logits read ``frac_prevs`` from a1.h0.

Ground truth, zero ablation: every edge the compiled weights connect (``src`` writes a residual
direction that ``dst`` reads: ``tracr_base.read_write_edges``, 5 edges), all of them needed.
Per position: each answer position selects itself and every earlier token, so the keys and
values of positions 1..4 are read; BOS is never attended (a match always exists) and its value
is 0, so nothing at BOS is needed. m0 and the logits are needed at the answer positions.

Ground truth, resample ablation: the partner has the same length, so ``indices``, ``one`` and
BOS, hence a1.h0's query and key inputs and its attention pattern, are the same on both inputs;
what differs is the tokens read by m0, ``is_x`` read by the value, and the fraction read by the
logits (3 edges; 12 per position).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tasks.base import TaskData, register_task
from tasks.tracr_base import GTEdge, TracrTask, answer_mean


@register_task("tracr-proportion")
class TracrProportion(TracrTask):
    description = (
        'tracr-compiled model giving the running fraction of "x" in 4 tokens over {w,x,y,z}'
    )
    metric_description = (
        "negative mean squared error of the numeric output against the true fraction of x, over "
        "the 4 output positions; higher = more correct (0 is exact)"
    )
    program = "proportion"
    seq_len = 4
    max_examples = 4**4
    default_n = 4**4

    GROUND_TRUTH: ClassVar[tuple[GTEdge, ...]] = (
        GTEdge("embed", "m0", "answers", True, "tokens"),
        GTEdge("m0", "a1.h0.v", "answers", True, "is_x"),
        GTEdge("embed", "a1.h0.q", "answers", False, "indices and one"),
        GTEdge("embed", "a1.h0.k", "answers", False, "indices"),
        GTEdge("a1.h0", "logits", "answers", True, "frac_prevs"),
    )

    def _targets(self, seqs: list[tuple]) -> tuple[Int[Tensor, "n pos"], dict[str, Tensor]]:
        frac = torch.zeros(len(seqs), self.n_pos)
        for i, s in enumerate(seqs):
            hits = torch.tensor([t == "x" for t in s], dtype=torch.float32).cumsum(0)
            frac[i, 1:] = hits / torch.arange(1, len(s) + 1)
        return torch.zeros(len(seqs), self.n_pos, dtype=torch.long), {"target": frac}

    def metric(self, logits: Float[Tensor, "*k n pos 1"], data: TaskData) -> Float[Tensor, "*k n"]:
        return -answer_mean((logits[..., 0] - data.extra["target"]) ** 2, data)

    def divergence(
        self,
        logits: Float[Tensor, "*k n pos 1"],
        clean_logits: Float[Tensor, "n pos 1"],
        data: TaskData,
    ) -> Float[Tensor, "*k n"]:
        """Mean squared difference from the clean output at the answer positions (the ACDC
        paper used an L2 distance for this numeric task, where KL has no meaning)."""
        return answer_mean((logits[..., 0] - clean_logits[..., 0]) ** 2, data)
