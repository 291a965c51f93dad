"""Dangling-edge pruning: hand-checked circuits, and random circuits against a path search."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from patching.graph import EdgeGraph, GraphConfig
from patching.names import parse_edge, without_role
from patching.prune import NodeIndex, prune_dangling

EDGES = [
    "embed->a0.h0.q",
    "embed->a0.h0.v",
    "embed->m0",
    "a0.h0->m0",
    "embed->a1.h0.v",
    "a0.h0->a1.h0.v",
    "m0->a1.h0.v",
    "embed->logits",
    "a0.h0->logits",
    "m0->logits",
    "a1.h0->logits",
]


def _mask(kept: set[str]) -> np.ndarray:
    return np.array([e in kept for e in EDGES])


def _names(mask: np.ndarray) -> set[str]:
    return {e for e, k in zip(EDGES, mask, strict=True) if k}


@pytest.mark.parametrize(
    ("kept", "left"),
    [
        # a head none of whose inputs is kept reaches nothing from the input
        ({"a0.h0->logits"}, set()),
        ({"embed->a0.h0.v", "a0.h0->logits"}, {"embed->a0.h0.v", "a0.h0->logits"}),
        # an MLP whose output is not kept is not alive, and neither is what feeds only it
        ({"embed->a0.h0.v", "a0.h0->m0"}, set()),
        (
            {"embed->a0.h0.q", "a0.h0->m0", "m0->logits", "m0->a1.h0.v"},
            {"embed->a0.h0.q", "a0.h0->m0", "m0->logits"},
        ),
        # the q input alone connects the head; the v role is the same node
        ({"embed->a0.h0.q", "a0.h0->a1.h0.v", "a1.h0->logits"}, None),
        (set(EDGES), None),
        (set(), set()),
    ],
)
def test_hand_checked_circuits(kept, left):
    want = kept if left is None else left
    assert _names(prune_dangling(EDGES, _mask(kept))) == want


def _reference(edges: list[str], kept: np.ndarray) -> np.ndarray:
    """Keep an edge when a path of kept edges runs input -> its source and its destination's
    node -> logits (plain graph search, one edge at a time)."""
    fwd, bwd = defaultdict(set), defaultdict(set)
    for name, k in zip(edges, kept, strict=True):
        if k:
            e = parse_edge(name)
            fwd[e.src.name].add(without_role(e.dst.name))
            bwd[without_role(e.dst.name)].add(e.src.name)

    def closure(start: str, nxt) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for m in nxt[todo.pop()] - seen:
                seen.add(m)
                todo.append(m)
        return seen

    reached, alive = closure("embed", fwd), closure("logits", bwd)
    out = []
    for name, k in zip(edges, kept, strict=True):
        e = parse_edge(name)
        out.append(bool(k) and e.src.name in reached and without_role(e.dst.name) in alive)
    return np.array(out)


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("config", [GraphConfig(), GraphConfig(split_qkv=False, positions=3)])
def test_random_circuits_match_a_path_search(config, parallel):
    graph = EdgeGraph(3, 2, True, config, parallel=parallel)
    edges = graph.edge_names
    rng = np.random.default_rng(0)
    masks = np.stack([rng.random(len(edges)) < p for p in (0.02, 0.05, 0.1, 0.2, 0.4, 0.8)])
    index = NodeIndex.of(edges)
    pruned = prune_dangling(index, masks)
    assert pruned.shape == masks.shape
    for mask, got in zip(masks, pruned, strict=True):
        np.testing.assert_array_equal(got, _reference(edges, mask))
        np.testing.assert_array_equal(prune_dangling(index, got), got)  # closed
    assert (pruned <= masks).all() and (pruned != masks).any()  # prunes, never adds


def test_wrong_number_of_edges_is_refused():
    with pytest.raises(ValueError, match="11"):
        prune_dangling(EDGES, np.ones(5, dtype=bool))
