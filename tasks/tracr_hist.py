"""tracr-hist: a tracr-compiled transformer that counts how often each token occurs.

Inputs are every sequence of 4 tokens over {a, b, c} after BOS (81 inputs, 5 positions); the
model was compiled (bidirectional) for up to 4 tokens. The output at position p (1..4) is the
number of tokens in the input equal to the token at p (``lib.make_hist``), as logits over the
counts {0, ..., 4}.

Where the compiled model computes it (1 block of one head; directions named as in
``tracr_weights/hist.json``):

- a0.h0: ``hist``, step 1 (SelectorWidth of Select(tokens, tokens, EQ)). The query (tokens, and
  ``one`` for BOS's fallback score) matches the keys with the same token and BOS (key
  ``tokens:BOS``) with the same score; the value reads only the BOS indicator, so the head writes
  BOS's attention share 1/(hist + 1).
- m0: ``hist``, step 2: decodes 1/(hist + 1) into a one-hot count (reads that direction, and
  ``one`` and ``tokens:BOS`` as its biases).
- logits read ``hist`` from m0.

Ground truth, zero ablation: every edge the compiled weights connect (``src`` writes a residual
direction that ``dst`` reads: ``tracr_base.read_write_edges``, 6 edges), all of them needed.
Per position (22 edges): the query, m0 and the logits at the answer positions; the key at every
position (at BOS it carries ``tokens:BOS``, the score that makes BOS's share 1/(hist + 1));
the value only at BOS, the one position whose value is nonzero.

Ground truth, resample ablation: the partner input has the same length and the same BOS, so
the BOS key and value and the biases ``embed->m0`` read are the same on both inputs; what differs
is the tokens read by the query and the keys at the answer positions, the share written by a0.h0
and the counts read by the logits (4 edges; 16 per position).
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
