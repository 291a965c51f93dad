"""patching.mib_names: MIB's node and edge names and ours, both ways, and what has no
counterpart."""

from __future__ import annotations

import pytest

from patching.graph import EdgeGraph
from patching.mib_names import (
    MibNameError,
    from_mib_edge,
    from_mib_node,
    mib_nodes,
    names_mlp,
    to_mib_edge,
    to_mib_node,
)


def test_names_both_ways():
    assert to_mib_edge("embed->a3.h0.v") == "input->a3.h0<v>"
    assert to_mib_edge("a2.h1->m5") == "a2.h1->m5"
    assert to_mib_edge("m11->logits") == "m11->logits"
    assert from_mib_edge("input->a3.h0<v>") == "embed->a3.h0.v"
    assert from_mib_edge("a2.h1->a4.h3<k>") == "a2.h1->a4.h3.k"
    assert (to_mib_node("embed"), from_mib_node("input")) == ("input", "embed")
    assert (to_mib_node("m3"), from_mib_node("a1.h0")) == ("m3", "a1.h0")
    for bad in ("input", "input->a3.h0<x>", "x9->m1"):
        with pytest.raises(MibNameError):
            from_mib_edge(bad)
    with pytest.raises(MibNameError, match="no positions"):
        to_mib_edge("embed->m0@2")
    with pytest.raises(MibNameError, match="no role"):
        to_mib_edge("embed->a0.h0")


def test_every_edge_of_a_graph_round_trips():
    g = EdgeGraph(n_layers=3, n_heads=2, has_mlp=True)
    assert [from_mib_edge(to_mib_edge(n)) for n in g.edge_names] == list(g.edge_names)
    nodes = mib_nodes(g)
    assert nodes[0] == "input" and nodes[-1] == "logits" and len(nodes) == 1 + 3 * 2 + 3 + 1


def test_names_mlp():
    assert names_mlp(["a0.h1->m2"]) and names_mlp(["m0"])
    assert not names_mlp(["input->a3.h0<v>", "a2.h1->logits", "mlp"])
