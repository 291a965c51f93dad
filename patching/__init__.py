"""Edge graph and its names, one-pass interpolated-patch forward, and model adapters."""

from patching.graph import EdgeGraph, GraphConfig, GraphOptions
from patching.names import Edge, Node, parse_edge, parse_node, project_edges
from patching.patched import AblatedSources, PatchableModel

__all__ = [
    "AblatedSources",
    "Edge",
    "EdgeGraph",
    "GraphConfig",
    "GraphOptions",
    "Node",
    "PatchableModel",
    "parse_edge",
    "parse_node",
    "project_edges",
]
