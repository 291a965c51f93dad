"""The edge graph: counts, names, options, and architectures it refuses."""

from __future__ import annotations

import pytest
import torch

from patching import EdgeGraph, GraphConfig, GraphOptions, PatchableModel
from patching.hooked import HookedConfig, HookedModel
from tests.models import tiny_model


def test_gpt2_small_counts():
    g = EdgeGraph(12, 12, has_mlp=True)
    assert g.n_sources == 157
    assert g.n_edges == 32491
    assert (
        EdgeGraph(12, 12, True, GraphConfig(split_qkv=False)).n_edges == 11611
    )  # 12 * 870 + 1014 + 157
    head_pairs = sum(1 for s, d in g.edge_pairs if s.startswith("a") and d.endswith(".q"))
    assert head_pairs == 9504  # head-to-head pairs ignoring q/k/v: 144 heads * 66 earlier


@pytest.mark.parametrize(
    "layers,heads,mlp", [(1, 1, True), (2, 3, False), (4, 2, True), (3, 8, True)]
)
@pytest.mark.parametrize(
    "config",
    [
        GraphConfig(),
        GraphConfig(split_qkv=False),
        GraphConfig(positions=3),
        GraphConfig(include_mlp=False),
    ],
)
def test_count_formula_matches_enumeration(layers, heads, mlp, config):
    g = EdgeGraph(layers, heads, mlp, config)
    assert g.n_edges == g.expected_n_edges() == len(g.edge_names) == len(set(g.edge_names))


def test_edge_names_and_lookup():
    g = EdgeGraph(12, 12, True)
    for name in ["embed->a3.h0.v", "m2->a5.h5.q", "a9.h9->logits", "a3.h1->m3", "m11->logits"]:
        assert g.edge_names[g.edge_index(name)] == name
    for absent in ["a3.h0->a3.h1.q", "m3->m3", "a5.h0->a4.h0.k", "m3->a3.h0.q"]:
        with pytest.raises(KeyError):
            g.edge_index(absent)
    with pytest.raises(KeyError, match="did you mean"):
        g.edge_index("embed->a3.h0.w")


def test_attention_only_graph_has_no_mlp_edges():
    g = EdgeGraph(3, 2, True, GraphConfig(include_mlp=False))
    assert not any(s.startswith("m") or d.startswith("m") for s, d in g.edge_pairs)
    assert g.n_edges == EdgeGraph(3, 2, False).n_edges


def test_per_position_names():
    g = EdgeGraph(2, 2, True, GraphConfig(positions=4))
    assert g.edge_index("embed->a1.h0.k@3") == g.edge_index("embed->a1.h0.k@0") + 3


def test_bad_graph_config():
    with pytest.raises(ValueError):
        GraphConfig(positions=0)
    with pytest.raises(ValueError, match="positive int"):
        GraphConfig(positions=True)  # a bool is not a sequence length
    with pytest.raises(TypeError, match="split_qkv"):
        GraphConfig(split_qkv=1)


def test_graph_options_resolve_the_sequence_length():
    assert GraphOptions().config(7) == GraphConfig()
    assert GraphOptions(per_position=True).config(7) == GraphConfig(positions=7)
    assert GraphOptions(include_mlp=False).config(7) == GraphConfig(include_mlp=False)
    with pytest.raises(TypeError, match="per_position"):
        GraphOptions(per_position=7)


def _model(**features):
    """A model whose config claims ``features`` (set after building: ``HookedModel`` itself
    builds only the architectures the graph supports; the adapter must still refuse a config
    that names others, as a TransformerLens 3 ``HookedTransformer`` of that config would)."""
    cfg = HookedConfig(n_layers=1, d_model=16, n_ctx=8, d_head=4, n_heads=4, d_vocab=10,
                       act_fn="relu")  # fmt: skip
    model = HookedModel(cfg)
    for k, v in features.items():
        setattr(model.cfg, k, v)
    return model


@pytest.mark.parametrize(
    "kw,feature",
    [
        (dict(positional_embedding_type="rotary", rotary_dim=4), "rotary"),
        (dict(parallel_attn_mlp=True), "parallel attention"),
        (dict(n_key_value_heads=2), "grouped-query"),
    ],
)
def test_unsupported_architectures_raise(kw, feature):
    with pytest.raises(NotImplementedError, match=feature):
        PatchableModel(_model(**kw))


def test_unsupported_hooked_transformer_architectures_raise():
    """The same refusals on TransformerLens 3 ``HookedTransformer``s built with those features
    (TransformerLens 4 has none: skipped there)."""
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError:
        pytest.skip("TransformerLens 4: no HookedTransformer")
    base = dict(n_layers=1, d_model=16, n_ctx=8, d_head=4, n_heads=4, d_vocab=10, act_fn="relu")
    for kw, feature in [
        (dict(positional_embedding_type="rotary", rotary_dim=4), "rotary"),
        (dict(parallel_attn_mlp=True), "parallel attention"),
        (dict(n_key_value_heads=2), "grouped-query"),
    ]:
        with pytest.raises(NotImplementedError, match=feature):
            PatchableModel(HookedTransformer(HookedTransformerConfig(**base, **kw)))


def test_bad_masks_and_batches():
    model = tiny_model("gpt2")
    pm = PatchableModel(model)
    clean = torch.randint(0, 50, (2, 5))
    ab = pm.ablate("resample", clean, torch.randint(0, 50, (2, 5)))
    E = pm.graph.n_edges
    with pytest.raises(ValueError, match="shape"):
        pm(clean, torch.ones(E + 1), ab)
    with pytest.raises(ValueError, match="shape"):
        pm(clean, torch.ones(2, 3, E), ab)
    bad = torch.ones(E)
    bad[3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        pm(clean, bad, ab)
    with pytest.raises(ValueError, match="same shape"):
        pm.ablate("resample", clean, torch.randint(0, 50, (3, 5)))
    with pytest.raises(ValueError, match="ablation"):
        pm(torch.randint(0, 50, (2, 6)), torch.ones(E), ab)
    with pytest.raises(ValueError, match="unknown ablation"):
        pm.ablate("gaussian", clean, clean)
