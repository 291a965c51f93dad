"""Dangling edges: the part of a circuit that cannot connect the input to the logits.

A circuit (a set of kept edges) may hold edges that no path of kept edges links to both ends
of the model: an edge out of a head none of whose inputs is kept, or into an MLP whose output
reaches nothing kept. MIB's circuit track prunes such nodes and edges before it evaluates a
circuit (Mueller et al. 2025, "MIB: A Mechanistic Interpretability Benchmark"; EAP-IG's
``Graph.prune``), and so do we, so a circuit's size counts only edges that can matter.

Under resample ablation pruning changes nothing the model computes only in the limit; under
zero or mean ablation it does change it: a node with no kept inputs still emits its bias (or its
output on the ablated input) through its kept outgoing edges, and pruning ablates those edges.

Rule, on the node level (a destination ``a3.h0.q`` belongs to node ``a3.h0``; positions are
ignored, so in a per-position graph a path may change position at a head, as attention does):

- a node is *reached* when it is ``embed`` or a kept edge enters it from a reached node;
- a node is *alive* when it is ``logits`` or a kept edge leaves it to an alive node;
- an edge stays when it is kept, its source is reached and its destination's node is alive.

One forward sweep (by :func:`patching.names.depth`) and one backward sweep suffice: every edge
left links a reached source to an alive node, so the result is closed (pruning it again changes
nothing; tested).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool

from patching.names import EMBED, LOGITS, depth, parse_edge, without_role


@dataclass(frozen=True)
class NodeIndex:
    """The node of each edge's two ends, as integer ids, and the nodes sorted by when they
    write (``embed`` first, ``logits`` last)."""

    nodes: tuple[str, ...]
    src: np.ndarray  # [n_edges] node id of each edge's source
    dst: np.ndarray  # [n_edges] node id of each edge's destination node (role dropped)

    @classmethod
    def of(cls, edge_names: Sequence[str]) -> NodeIndex:
        edges = [parse_edge(n) for n in edge_names]
        names = {EMBED, LOGITS}
        names.update(e.src.name for e in edges)
        names.update(without_role(e.dst.name) for e in edges)
        nodes = tuple(sorted(names, key=lambda n: (_when(n), n)))
        ids = {n: i for i, n in enumerate(nodes)}
        src = np.array([ids[e.src.name] for e in edges], dtype=np.int64)
        dst = np.array([ids[without_role(e.dst.name)] for e in edges], dtype=np.int64)
        return cls(nodes, src, dst)


def _when(node: str) -> float:
    return math.inf if node == LOGITS else depth(node)


def prune_dangling(
    edge_names: Sequence[str] | NodeIndex, masks: Bool[np.ndarray, "*k n_edges"]
) -> Bool[np.ndarray, "*k n_edges"]:
    """``masks`` (one circuit ``[n_edges]`` or several ``[k, n_edges]``) without their dangling
    edges. ``edge_names`` is the graph's edge order (or a precomputed :class:`NodeIndex`)."""
    index = edge_names if isinstance(edge_names, NodeIndex) else NodeIndex.of(edge_names)
    kept = np.asarray(masks, dtype=bool)
    if kept.shape[-1] != index.src.size:
        raise ValueError(
            f"masks have {kept.shape[-1]} edges but the graph has {index.src.size}; "
            "pass the edge names of the graph the masks were made for"
        )
    flat = kept.reshape(-1, kept.shape[-1])
    n_nodes = len(index.nodes)
    reached = np.zeros((flat.shape[0], n_nodes), dtype=bool)
    alive = np.zeros_like(reached)
    reached[:, 0] = True  # embed writes first
    alive[:, n_nodes - 1] = True  # logits reads last
    into = [np.flatnonzero(index.dst == v) for v in range(n_nodes)]
    out_of = [np.flatnonzero(index.src == v) for v in range(n_nodes)]
    for v in range(1, n_nodes):
        e = into[v]
        reached[:, v] = (flat[:, e] & reached[:, index.src[e]]).any(axis=1)
    for v in range(n_nodes - 2, -1, -1):
        e = out_of[v]
        alive[:, v] = (flat[:, e] & alive[:, index.dst[e]]).any(axis=1)
    pruned = flat & reached[:, index.src] & alive[:, index.dst]
    return pruned.reshape(kept.shape)
