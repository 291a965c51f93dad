"""``activation-patching-pos``: exact single-edge effects on the per-position graph."""

from __future__ import annotations

from methods.activation_patching import ActivationPatching
from methods.base import register_method
from patching.graph import GraphOptions


@register_method("activation-patching-pos")
class ActivationPatchingPerPosition(ActivationPatching):
    description = "activation patching on the per-position graph (each edge at each position)"
    graph = GraphOptions(per_position=True)
