"""Edge graph, one-pass interpolated-patch forward, and model adapters."""

from patching.graph import EdgeGraph, GraphConfig, GraphOptions
from patching.patched import AblatedSources, PatchableModel

__all__ = ["AblatedSources", "EdgeGraph", "GraphConfig", "GraphOptions", "PatchableModel"]
