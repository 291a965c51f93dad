"""``ipd-attn-only``: interpolated-patch descent on the attention-only graph.

MLPs are held clean and out of the graph (every edge into and out of an MLP keeps its clean,
current-pass value); the edges are those between heads, the embedding and the logits. Fewer
edges to learn; the price is that the circuit can't say which MLPs matter.
"""

from __future__ import annotations

from methods.base import register_method
from methods.ipd import InterpolatedPatchDescent
from patching.graph import GraphOptions


@register_method("ipd-attn-only")
class IpdAttentionOnly(InterpolatedPatchDescent):
    description = "ipd on the attention-only graph (MLPs held clean, not in the graph)"
    graph = GraphOptions(include_mlp=False)
