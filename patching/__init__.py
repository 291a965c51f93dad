"""Edge graph, one-pass interpolated-patch forward, and model adapters."""

from patching.graph import EdgeGraph, GraphConfig
from patching.patched import Ablation, PatchableModel

__all__ = ["Ablation", "EdgeGraph", "GraphConfig", "PatchableModel"]
