"""patching.names: parsing and formatting round trips, errors that name the bad name and the
expected form, node questions, and the projection of edge sets onto graph options (checked
against the graph's own enumeration and against every task's ground truth)."""

from __future__ import annotations

import itertools

import pytest

from patching import names
from patching.graph import EdgeGraph, GraphConfig
from patching.names import Edge, Node, parse_edge, parse_node, project_edges
from tasks import get_task
from tasks.ioi.circuit import ioi_ground_truth

CONFIGS = [
    GraphConfig(split, pos, mlp)
    for split, pos, mlp in itertools.product((True, False), (None, 3), (True, False))
]


# ----- parsing and formatting --------------------------------------------------------------------
@pytest.mark.parametrize("config", CONFIGS)
def test_every_edge_of_a_graph_round_trips(config):
    graph = EdgeGraph(3, 2, True, config)
    for name in graph.edge_names:
        edge = parse_edge(name)
        assert str(edge) == edge.name == name
        assert (edge.position is None) == (config.positions is None)
        assert parse_edge(str(Edge(edge.src, edge.dst, edge.position))) == edge


@pytest.mark.parametrize(
    ("name", "node"),
    [
        ("embed", Node("embed")),
        ("logits", Node("logits")),
        ("m11", Node("mlp", 11)),
        ("a10.h3", Node("head", 10, 3)),
        ("a0.h12.k", Node("head", 0, 12, "k")),
    ],
)
def test_node_round_trip(name, node):
    assert parse_node(name) == node
    assert str(node) == name


def test_edge_fields():
    e = parse_edge("a1.h2->a3.h0.v@7")
    assert (e.src, e.dst, e.position) == (Node("head", 1, 2), Node("head", 3, 0, "v"), 7)
    assert names.edge_name("m0", "logits") == "m0->logits"
    assert names.edge_name("m0", "logits", 2) == "m0->logits@2"
    assert names.head_name(4, 5) == "a4.h5" and names.head_name(4, 5, "q") == "a4.h5.q"
    assert names.mlp_name(3) == "m3"
    assert names.at_position("embed->m1", 4) == "embed->m1@4"


@pytest.mark.parametrize("bad", ["", "a1", "a1.h", "A1.h2", "a01.h0", "a1.h2.x", "m", "mlp1", "x"])
def test_bad_node_names_say_the_name_and_the_form(bad):
    with pytest.raises(ValueError, match=rf"bad node name '{bad}'; expected embed, logits, a\{{"):
        parse_node(bad)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("embed", "expected .*->"),
        ("embed->", "expected .*->"),
        ("embed->m1@", "bad node name 'm1@'"),
        ("embed->m1@-1", "bad node name 'm1@-1'"),
        ("logits->m1", "'logits' is not a source"),
        ("a0.h0.q->m1", "'a0.h0.q' is not a source"),
        ("m0->embed", "'embed' is not a destination"),
        ("embed->a0.h0.z", "bad node name 'a0.h0.z'"),
    ],
)
def test_bad_edge_names_say_the_name_and_why(bad, why):
    with pytest.raises(ValueError, match=rf"bad edge name '{bad}'.*{why}"):
        parse_edge(bad)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "attn"},
        {"kind": "mlp"},
        {"kind": "mlp", "layer": True},
        {"kind": "mlp", "layer": -1},
        {"kind": "embed", "layer": 0},
        {"kind": "head", "layer": 0},
        {"kind": "mlp", "layer": 0, "role": "q"},
        {"kind": "head", "layer": 0, "head": 0, "role": "o"},
    ],
)
def test_invalid_nodes_are_refused(kwargs):
    with pytest.raises(ValueError, match=r"node|Node\("):
        Node(**kwargs)


# ----- questions about a node --------------------------------------------------------------------
def test_node_questions():
    assert names.is_head("a2.h1") and names.is_head("a2.h1.q") and not names.is_head("m2")
    assert names.is_mlp("m2") and not names.is_mlp("embed") and not names.is_mlp("logits")
    assert [names.layer_of(n) for n in ("embed", "a3.h1.k", "m5", "logits")] == [None, 3, 5, None]
    assert [names.role_of(n) for n in ("a3.h1.k", "a3.h1", "m5")] == ["k", None, None]
    assert [names.without_role(n) for n in ("a3.h1.k", "a3.h1", "m5", "logits")] == [
        "a3.h1",
        "a3.h1",
        "m5",
        "logits",
    ]
    assert names.with_role("a3.h1", "v") == "a3.h1.v"
    with pytest.raises(ValueError, match="only a head's input has a role, not 'm1'"):
        names.with_role("m1", "q")


def test_depths():
    assert [names.depth(n) for n in ("embed", "a0.h3", "m0", "a4.h0", "m4")] == [
        -1.0,
        0.0,
        0.5,
        4.0,
        4.5,
    ]
    assert names.read_depth("a2.h0.q") == 2.0 and names.read_depth("m2") == 2.5
    assert names.read_depth("m2", parallel=True) == 2.0
    assert names.read_depth("logits") > 1e9
    with pytest.raises(ValueError, match="'logits' is not a source"):
        names.depth("logits")
    with pytest.raises(ValueError, match="'embed' is not a destination"):
        names.read_depth("embed")


@pytest.mark.parametrize("has_mlp", [True, False])
def test_is_upstream_is_the_graphs_edge_relation(has_mlp):
    graph = EdgeGraph(3, 2, has_mlp)
    dests = {d for _, d in graph.edge_pairs}
    have = set(graph.edge_pairs)
    for s, d in itertools.product(graph.sources, sorted(dests)):
        assert names.is_upstream(s, d) == ((s, d) in have), (s, d)


def test_parallel_block_mlp_does_not_read_its_layers_heads():
    assert names.is_upstream("a1.h0", "m1") and not names.is_upstream("a1.h0", "m1", parallel=True)
    assert names.is_upstream("a0.h0", "m1", parallel=True)
    assert names.is_upstream("m1", "a2.h0.q", parallel=True)


# ----- projection ---------------------------------------------------------------------------------
EDGES = {"embed->a1.h0.q@1", "embed->a1.h0.k@2", "m0->a1.h0.v@1", "a1.h0->logits@3", "embed->m0@0"}


@pytest.mark.parametrize(
    ("config", "want"),
    [
        (
            GraphConfig(),
            {"embed->a1.h0.q", "embed->a1.h0.k", "m0->a1.h0.v", "a1.h0->logits", "embed->m0"},
        ),
        (GraphConfig(split_qkv=False), {"embed->a1.h0", "m0->a1.h0", "a1.h0->logits", "embed->m0"}),
        (GraphConfig(split_qkv=False, include_mlp=False), {"embed->a1.h0", "a1.h0->logits"}),
        (GraphConfig(positions=4), EDGES),
        (
            GraphConfig(split_qkv=False, positions=4),
            {"embed->a1.h0@1", "embed->a1.h0@2", "m0->a1.h0@1", "a1.h0->logits@3", "embed->m0@0"},
        ),
        (
            GraphConfig(positions=4, include_mlp=False),
            {"embed->a1.h0.q@1", "embed->a1.h0.k@2", "a1.h0->logits@3"},
        ),
    ],
)
def test_projection_of_a_small_set(config, want):
    assert project_edges(EDGES, config) == want
    assert EdgeGraph(2, 1, True, config).project(EDGES) == want


def test_projection_expands_position_free_edges():
    free = {"embed->a1.h0.q", "a1.h0->logits@2"}
    config = GraphConfig(positions=3)
    assert project_edges(free, config) == {
        "embed->a1.h0.q@0",
        "embed->a1.h0.q@1",
        "embed->a1.h0.q@2",
        "a1.h0->logits@2",
    }
    assert project_edges(free, config, positions=[1]) == {"embed->a1.h0.q@1", "a1.h0->logits@2"}
    with pytest.raises(ValueError, match=r"positions \[3\] are outside a graph of 3 positions"):
        project_edges(free, config, positions=[3])
    with pytest.raises(ValueError, match="'embed->m0@5' is outside a graph of 3 positions"):
        project_edges({"embed->m0@5"}, config)
    with pytest.raises(ValueError, match="bad edge name 'embed->a1'"):
        project_edges({"embed->a1"}, config)


def test_graph_project_refuses_an_edge_it_does_not_have():
    with pytest.raises(KeyError, match="no edge 'a1.h0->a0.h0.q' in this graph"):
        EdgeGraph(2, 1, True).project({"a1.h0->a0.h0.q"})


# Each task's ground truth in its richest graph option (q/k/v split, MLPs, per position where
# the task has positions), projected onto every option, is the task's ground truth there.
def _richest_and_options(key: str):
    if key == "ioi":
        roles = {"io_pos": 2, "s1_pos": 4, "s1_plus1_pos": 5, "s2_pos": 10, "end_pos": 14}
        graph = lambda cfg: EdgeGraph(12, 12, True, cfg)  # noqa: E731
        truth = lambda g, _abl: ioi_ground_truth(g, roles)  # noqa: E731
        return truth, graph, 15, ("resample",)
    task = get_task(key)
    if key == "induction":
        c = task.config
        graph = lambda cfg: EdgeGraph(c.n_layers, c.n_heads, False, cfg)  # noqa: E731
        return task.ground_truth, graph, None, task.ablations
    c = task.meta["config"]
    graph = lambda cfg: EdgeGraph(c["n_layers"], c["n_heads"], True, cfg)  # noqa: E731
    return task.ground_truth, graph, task.n_pos, task.ablations


@pytest.mark.parametrize("key", ["tracr-reverse", "tracr-proportion", "induction", "ioi"])
def test_projecting_the_richest_ground_truth_gives_every_options(key):
    truth, graph, n_pos, ablations = _richest_and_options(key)
    for ablation in ablations:
        richest = truth(graph(GraphConfig(positions=n_pos)), ablation)
        for split, mlp, per_pos in itertools.product((True, False), repeat=3):
            if per_pos and n_pos is None:
                continue
            g = graph(GraphConfig(split, n_pos if per_pos else None, mlp))
            assert g.project(richest) == truth(g, ablation), (ablation, g.config)
