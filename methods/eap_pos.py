"""``eap-pos``: edge attribution patching on the per-position graph (see ``eap``)."""

from __future__ import annotations

from methods.base import register_method
from methods.eap import EdgeAttributionPatching
from patching.graph import GraphOptions


@register_method("eap-pos")
class EapPerPosition(EdgeAttributionPatching):
    description = "eap on the per-position graph (one score per edge and token position)"
    graph = GraphOptions(per_position=True)
