"""tracr-sort-unique: a tracr-compiled transformer that sorts distinct tokens.

Inputs are every sequence of 4 distinct tokens from {1, ..., 5} after BOS (120 inputs, 5
positions; ``lib.make_sort_unique`` needs unique keys); the model was compiled (bidirectional)
for up to 4 tokens. The output at position p (1..4) is the p-th smallest token, as logits over
the tokens {1, ..., 5}. Program: ``lib.make_sort_unique(tokens, tokens)``.

Where the compiled model computes each step (2 blocks of one head; m1 has zero weights;
directions named as in ``tracr_weights/sort_unique.json``; position p holds index p - 1):

- a0.h0: ``target_pos``, step 1 (SelectorWidth of Select(tokens, tokens, LT)): the query (tokens,
  plus ``one``) matches the keys with a smaller token and BOS (key ``tokens:BOS``); the value
  reads only the BOS indicator, so the head writes BOS's share 1/(target_pos + 1).
- m0: ``target_pos``, step 2: decodes that share into a one-hot count of smaller tokens (reads
  it, and ``one`` and ``tokens:BOS`` as biases).
- a1.h0: ``sort = Aggregate(Select(target_pos, indices, EQ), tokens)``: query ``indices`` (plus
  ``one``), key ``target_pos`` (from m0; plus ``tokens:BOS``), value ``tokens``.
- logits read ``sort`` from a1.h0.

Ground truth, zero ablation: the edges the compiled weights connect (10) less one,
``embed->a1.h0.k``: it carries only ``tokens:BOS``, BOS's fallback score in a1.h0, and every
query index has a matching key (the tokens are a permutation), so BOS gets no weight either way
(9 edges). Per position (34 edges): a0.h0's key at every position (at BOS it carries BOS's
score), its value only at BOS (the one nonzero value); everything else at the answer positions.

Circuits are judged by a margin (``tests/tasks/test_tracr_new.py``): with a1.h0's query zeroed
at position 1 the pattern is uniform and the logits tie over the four input tokens, whose
argmax (the lowest id) happens to be the smallest token; a tie is not the program's output, so
``embed->a1.h0.q`` is needed at every answer position.

Ground truth, resample ablation: the partner is another permutation, so the indices, ``one`` and
BOS are the same on both inputs: a1.h0's query, a0.h0's BOS key and value and m0's biases are
not needed. What differs: the tokens read by a0.h0's query and keys, the share and the
``target_pos`` derived from it, the tokens a1.h0 moves and the sorted output (6 edges; 24 per
position).
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
