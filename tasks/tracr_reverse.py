"""tracr-reverse: a tracr-compiled transformer that reverses its input (the ACDC paper's task).

Inputs are every sequence of 4 tokens over {1, 2, 3} after BOS (81 inputs, 5 positions); the
model was compiled for sequences of up to 5 tokens (``tracr_programs.PROGRAMS``). The output at
position p (1..4) is the token at position 5 - p, as logits over the output tokens {1, 2, 3}.

Where the compiled model computes each step of ``lib.make_reverse`` (4 blocks of one head; a1,
a2 and m3 have zero weights; directions named as in ``tracr_weights/reverse.json``):

- a0.h0: ``length``, step 1 (SelectorWidth of Select(tokens, tokens, TRUE)). Every query
  attends to BOS and to every selected key with the same score (query: tokens and ``one``; key:
  tokens and ``tokens:BOS``); the value reads only the BOS indicator, so the head writes BOS's
  attention share 1/(length + 1).
- m0: ``length``, step 2: decodes 1/(length + 1) into a one-hot length (reads that direction, and
  ``one`` and ``tokens:BOS`` as its biases).
- m1: ``opp_idx = length - indices`` (reads ``length`` from m0, ``indices`` and ``one`` from
  the embedding).
- m2: ``opp_idx-1 = opp_idx - 1``.
- a3.h0: ``reverse = Aggregate(Select(indices, opp_idx-1, EQ), tokens)``: query ``opp_idx-1``
  (from m2, plus ``one``), key ``indices`` (plus ``tokens:BOS``), value ``tokens``.
- logits read ``reverse`` from a3.h0.

Ground truth, zero ablation. Start from the edges the compiled weights connect (``src`` writes a
residual direction that ``dst`` reads: ``tracr_base.read_write_edges``, 13 edges) and drop
the three that carry nothing the output depends on once the rest of the circuit is in place
(10 edges remain):

- ``embed->a0.h0.q`` and ``embed->a0.h0.k``: the selector is TRUE for every pair of tokens and
  BOS is attended with the same score, so the pattern is uniform over all positions. With the
  query zeroed every score is 0 and the pattern is again uniform, whatever the keys; the head
  needs neither. (Not the only faithful choice: a circuit that keeps the query needs the key at
  every position, since a zeroed key drops its position from the count. The minimal circuit
  keeps neither.)
- ``embed->a3.h0.q``: carries only ``one``, which gives BOS its fallback score (half a match);
  every query position has a matching key, so BOS gets no weight either way.

Per position (37 edges): the length head's value matters only at BOS, the one position whose
value is nonzero. Everything from a0.h0's output to a3.h0's query is computed position by
position and needed at the answer positions. a3.h0 reads its key and value at position 5 - p
for answer position p, i.e. at every answer position; BOS is never attended because a match
always exists. The logits are read at the answer positions.

Ground truth, resample ablation. The partner input has the same length, so ``length``,
``opp_idx``, ``opp_idx-1``, ``indices``, ``one`` and the BOS indicator, and with them the outputs
of a0.h0, m0, m1 and m2, are the same on both inputs; ``embed->a0.h0.k`` carries tokens, but
the all-true selector scores every token alike. What differs: the tokens that a3.h0's value
reads and the reversed sequence that the logits read (2 edges; 8 per position).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tasks.base import TaskData, register_task
from tasks.tracr_base import GTEdge, TracrTask, answer_mean


@register_task("tracr-reverse")
class TracrReverse(TracrTask):
    description = "tracr-compiled model that reverses a sequence of 4 tokens over {1, 2, 3}"
    metric_description = (
        "mean log-probability of the correct output token over the 4 output positions; "
        "higher = more correct (0 is perfectly confident)"
    )
    program = "reverse"
    seq_len = 4
    max_examples = 3**4
    default_n = 3**4

    GROUND_TRUTH: ClassVar[tuple[GTEdge, ...]] = (
        GTEdge("embed", "a0.h0.v", "bos", False, "the BOS indicator, whose share is 1/(length+1)"),
        GTEdge("a0.h0", "m0", "answers", False, "1/(length+1)"),
        GTEdge("embed", "m0", "answers", False, "one (bias)"),
        GTEdge("m0", "m1", "answers", False, "length"),
        GTEdge("embed", "m1", "answers", False, "indices and one"),
        GTEdge("m1", "m2", "answers", False, "opp_idx"),
        GTEdge("m2", "a3.h0.q", "answers", False, "opp_idx-1"),
        GTEdge("embed", "a3.h0.k", "answers", False, "indices"),
        GTEdge("embed", "a3.h0.v", "answers", True, "tokens"),
        GTEdge("a3.h0", "logits", "answers", True, "reverse"),
    )

    def _targets(self, seqs: list[tuple]) -> tuple[Int[Tensor, "n pos"], dict[str, Tensor]]:
        out = self.meta["output_encoding"]
        answers = torch.tensor([[0] + [out[str(t)] for t in reversed(s)] for s in seqs])
        return answers, {}

    def metric(
        self, logits: Float[Tensor, "*k n pos vocab"], data: TaskData
    ) -> Float[Tensor, "*k n"]:
        logp = torch.log_softmax(logits, dim=-1)
        idx = data.answers.expand(logp.shape[:-1]).unsqueeze(-1)
        return answer_mean(logp.gather(-1, idx).squeeze(-1), data)
