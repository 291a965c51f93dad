"""tracr-shuffle-dyck: a tracr-compiled transformer that tells whether parentheses balance.

Inputs are every sequence of 4 tokens over {(, ), x} after BOS (81 inputs, 9 of them balanced;
5 positions); the model was compiled (bidirectional: the program needs the input's length) for
up to 4 tokens. The output at every position p (1..4) is whether the input is balanced (no
prefix closes more than it opened, and as many close as open), as logits over {False, True}.
Program: ``lib.make_shuffle_dyck(["()"])`` (shuffle-Dyck-1), with ``lib.make_length`` inlined.

Where the compiled model computes each step (6 blocks of two heads; a2, a3, a5 have zero
weights; directions named as in ``tracr_weights/shuffle_dyck.json``; position p holds index
p - 1):

- a0.h0 and m0: ``length`` (SelectorWidth of Select(tokens, tokens, TRUE), as in
  tracr-reverse); m0 also computes ``bools_open`` and ``bools_close`` (tokens == "(", ")").
- m1: ``length-1``.
- a1.h0 / a1.h1: ``opens`` / ``closes``, the mean of ``bools_open`` / ``bools_close`` over
  positions with index <= the query's (query ``indices`` plus ``one``, key ``indices`` plus
  ``tokens:BOS``).
- m2: ``pair_balance = opens - closes``.
- m3: ``all_zero = pair_balance == 0`` and ``any_negative = pair_balance < 0`` (as a number).
- a4.h0: ``last_zero = Aggregate(Select(indices, length-1, EQ), all_zero)``: query ``length-1``
  (from m1, plus ``one``), key ``indices`` (plus ``tokens:BOS``), value ``all_zero``.
- a4.h1: ``has_neg``, the mean of ``any_negative`` over every position (select_all: query
  ``indices`` and ``one``, key ``indices`` and ``tokens:BOS``).
- m4: ``not_has_neg = not has_neg``; m5: ``shuffle_dyck = last_zero and not_has_neg``.
- logits read ``shuffle_dyck`` from m5.

Ground truth, zero ablation: the edges the compiled weights connect (29) less seven (22 edges):

- the ``length`` head, ``embed->a0.h0.q/k/v`` and ``a0.h0->m0``: every input has 4 tokens, and
  with a0.h0's output zeroed m0 decodes length 4 anyway (a share of 0 reads as the longest
  length), so ``length`` is a constant that m0 computes from its biases; a circuit holding
  ``a0.h0->m0`` is never minimal (drop that edge and every output stays right), and the head's
  inputs then reach nothing.
- ``embed->a4.h1.q`` and ``embed->a4.h1.k``: select_all scores every pair alike, so the
  pattern is uniform with or without them (as a0.h0's in tracr-reverse).
- ``embed->a4.h0.q``: carries only ``one``, BOS's fallback score; the last index always matches.

Ground truth, resample ablation: the partner has the same length, so ``indices``, ``one``,
BOS, ``length`` and ``length-1`` are the same on both inputs: every query and key, and the
biases of m3, m4, m5, are not needed. What differs is what the tokens set off: tokens ->
m0 -> bools -> a1 values -> opens/closes -> m2 -> balance -> m3 -> a4 values -> has_neg -> m4,
last_zero -> m5 -> logits (12 edges).

No per-position ground truth (``per_position = False``): the per-position circuit is not
determined. Removing edges greedily (keep an edge only if the outputs break without it) from the
145 connected position edges, in three random orders, ends in three different circuits of 81,
84 and 85 edges, the 81 a strict subset of the 84 (measured with the margin criterion of
``tests/tasks/test_tracr_programs.py``); the position-free ground truth above is what every
one of five random orders gives, for both ablations. A table picked by one order would not be
a ground truth, so graphs with ``positions`` set are refused
(:class:`tasks.problem.UnsupportedGraphError` in a run).

Cost: 6 layers and 388 edges make one ACDC run take about 90 s on CPU (activation patching
5 s), ten times tracr-reverse, so ``--tasks all`` leaves this task out (``in_all = False``);
name it to run it.
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
    description = "tracr-compiled model: do the parentheses of 4 tokens over {(,),x} balance?"
    metric_description = (
        "mean log-probability of the correct verdict (balanced or not) over the 4 output "
        "positions; higher = more correct (0 is perfectly confident)"
    )
    program = "shuffle_dyck"
    seq_len = 4
    max_examples = 3**4
    default_n = 3**4

    per_position = False
    # ACDC takes ~90 s per run on CPU here (388 edges, 6 layers), 10x tracr-reverse: named only
    in_all: ClassVar[bool] = False

    GROUND_TRUTH: ClassVar[tuple[GTEdge, ...]] = (
        # position-free (the table's positions are unused: no per-position ground truth)
        GTEdge("embed", "m0", "answers", True, "tokens (and one, tokens:BOS for length)"),
        GTEdge("m0", "a1.h0.v", "answers", True, "bools_open"),
        GTEdge("m0", "a1.h1.v", "answers", True, "bools_close"),
        GTEdge("embed", "a1.h0.q", "answers", False, "indices (and one)"),
        GTEdge("embed", "a1.h0.k", "answers", False, "indices"),
        GTEdge("embed", "a1.h1.q", "answers", False, "indices (and one)"),
        GTEdge("embed", "a1.h1.k", "answers", False, "indices"),
        GTEdge("a1.h0", "m2", "answers", True, "opens"),
        GTEdge("a1.h1", "m2", "answers", True, "closes"),
        GTEdge("m2", "m3", "answers", True, "pair_balance"),
        GTEdge("embed", "m3", "answers", False, "one (bias)"),
        GTEdge("m3", "a4.h0.v", "answers", True, "all_zero"),
        GTEdge("m3", "a4.h1.v", "answers", True, "any_negative"),
        GTEdge("m0", "m1", "answers", False, "length (constant 4 on these inputs)"),
        GTEdge("m1", "a4.h0.q", "answers", False, "length-1"),
        GTEdge("embed", "a4.h0.k", "answers", False, "indices"),
        GTEdge("a4.h1", "m4", "answers", True, "has_neg"),
        GTEdge("embed", "m4", "answers", False, "one (bias)"),
        GTEdge("a4.h0", "m5", "answers", True, "last_zero"),
        GTEdge("m4", "m5", "answers", True, "not_has_neg"),
        GTEdge("embed", "m5", "answers", False, "one (bias)"),
        GTEdge("m5", "logits", "answers", True, "shuffle_dyck"),
    )

    def _targets(self, seqs: list[tuple]) -> tuple[Int[Tensor, "n pos"], dict[str, Tensor]]:
        out = self.meta["output_encoding"]
        answers = torch.tensor([[0] + [out[str(balanced(s))]] * len(s) for s in seqs])
        return answers, {}

    def metric(
        self, logits: Float[Tensor, "*k n pos vocab"], data: TaskData
    ) -> Float[Tensor, "*k n"]:
        return correct_log_prob(logits, data)
