"""tracr-pair-balance: a tracr-compiled transformer giving the running parenthesis balance.

Inputs are every sequence of 4 tokens over {(, ), x} after BOS (81 inputs, 5 positions); the
model was compiled (causal) for up to 4 tokens. The output at position p (1..4) is the fraction
of tokens 1..p that are "(" minus the fraction that are ")" (``lib.make_pair_balance(tokens,
"(", ")")``), read from the one numeric output direction (``d_vocab_out = 1``).

Where the compiled model computes each step (2 blocks of two heads; a0 has zero weights;
directions named as in ``tracr_weights/pair_balance.json``):

- m0: ``bools_open = numerical(tokens == "(")`` and ``bools_close = numerical(tokens == ")")``
  (reads ``tokens:(`` and ``tokens:)``).
- a1.h0: ``opens = numerical Aggregate(Select(indices, indices, LEQ), bools_open)`` (query
  ``indices`` plus ``one``, key ``indices`` plus ``tokens:BOS``, value ``bools_open``): the mean
  over positions 1..p; a1.h1 likewise ``closes`` from ``bools_close``.
- m1: ``pair_balance = opens - closes`` (numerical LinearSequenceMap).
- logits read ``pair_balance`` from m1.

Ground truth, zero ablation: every edge the compiled weights connect (``tracr_base.
read_write_edges``, 10 edges), all of them needed. Per position (40 edges): every answer
position selects itself and every earlier token, so the keys and values of positions 1..4 are
read; BOS is never attended (a match always exists) and its value is 0, so nothing at BOS is
needed.

Ground truth, resample ablation: the partner has the same length, so ``indices``, ``one`` and
BOS, hence both heads' queries, keys and attention patterns, are the same on both inputs; what
differs is the tokens read by m0, the two indicators read by the values, the two fractions read
by m1 and the balance read by the logits (6 edges; 24 per position).
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
