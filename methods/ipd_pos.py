"""``ipd-pos``: interpolated-patch descent on the per-position graph.

One coefficient per (source, destination, token position): the circuit can say *where* an edge
matters, not only whether. Needs tasks whose prompts share positions and that define a
per-position ground truth (tracr); the runner skips the others with the task's reason.
"""

from __future__ import annotations

from methods.base import register_method
from methods.ipd import InterpolatedPatchDescent
from patching.graph import GraphOptions


@register_method("ipd-pos")
class IpdPerPosition(InterpolatedPatchDescent):
    description = "ipd on the per-position graph (one coefficient per edge and token position)"
    graph = GraphOptions(per_position=True)
