"""Exactness of the one-pass patched forward against TransformerLens and the slow reference."""

from __future__ import annotations

import pytest
import torch

from models.random import gpt2_small_shaped
from patching import GraphConfig, PatchableModel
from tests.models import KINDS, tiny_model
from tests.patching.reference import reference_patched_logits, tl_source_outputs

DTYPES = {torch.float32: dict(atol=2e-4, rtol=1e-4), torch.float64: dict(atol=1e-9, rtol=1e-9)}
GRAPHS = [
    GraphConfig(),
    GraphConfig(split_qkv=False),
    GraphConfig(positions=6),
    GraphConfig(include_mlp=False),
]


def _tokens(seed: int, shape=(3, 6), vocab=50):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, shape, generator=g)


def _close(a, b, dtype):
    torch.testing.assert_close(a, b, **DTYPES[dtype])


@pytest.fixture(params=list(KINDS), scope="module")
def kind(request):
    return request.param


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_all_ones_is_clean_forward(kind, dtype):
    model = tiny_model(kind, dtype)
    clean, corrupt = _tokens(0), _tokens(1)
    for gc in GRAPHS:
        pm = PatchableModel(model, gc)
        ab = pm.ablate("resample", clean, corrupt)
        out = pm(clean, torch.ones(pm.graph.n_edges, dtype=dtype), ab)
        _close(out, model(clean), dtype)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_all_zeros_resample_is_corrupted_forward(kind, dtype):
    model = tiny_model(kind, dtype)
    clean, corrupt = _tokens(0), _tokens(1)
    for gc in GRAPHS:
        if not gc.include_mlp and kind != "attn-only":
            continue  # MLPs held clean: all-zeros is not the corrupted run (tested below)
        pm = PatchableModel(model, gc)
        ab = pm.ablate("resample", clean, corrupt)
        out = pm(clean, torch.zeros(pm.graph.n_edges, dtype=dtype), ab)
        _close(out, model(corrupt), dtype)
        # and it is not the clean output: the test can fail
        assert not torch.allclose(out, model(clean), atol=1e-3)


def _ablated(model, kind_of_ablation, clean, corrupt):
    outs = tl_source_outputs(model, corrupt)
    if kind_of_ablation == "resample":
        return outs
    if kind_of_ablation == "mean":
        return {k: v.mean(0, keepdim=True) for k, v in outs.items()}
    return {k: torch.zeros_like(v[:1]) for k, v in outs.items()}


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("ablation", ["resample", "mean", "zero"])
def test_random_binary_masks_match_slow_reference(kind, dtype, ablation):
    model = tiny_model(kind, dtype)
    clean, corrupt = _tokens(0), _tokens(1)
    ablated = _ablated(model, ablation, clean, corrupt)
    gen = torch.Generator().manual_seed(2)
    for gc in GRAPHS:
        pm = PatchableModel(model, gc)
        ab = pm.ablate(ablation, clean, corrupt, reference=corrupt)
        masks = (torch.rand(3, pm.graph.n_edges, generator=gen) < 0.5).to(dtype)
        batched = pm(clean, masks, ab)  # [3, batch, pos, vocab] in one pass
        for k in range(3):
            ref = reference_patched_logits(model, pm.graph, clean, masks[k], ablated)
            _close(pm(clean, masks[k], ab), ref, dtype)
            _close(batched[k], ref, dtype)


def test_fractional_masks_match_slow_reference(kind):
    dtype = torch.float64
    model = tiny_model(kind, dtype)
    clean, corrupt = _tokens(0), _tokens(1)
    ablated = _ablated(model, "resample", clean, corrupt)
    pm = PatchableModel(model)
    ab = pm.ablate("resample", clean, corrupt)
    mask = torch.rand(pm.graph.n_edges, generator=torch.Generator().manual_seed(3), dtype=dtype)
    ref = reference_patched_logits(model, pm.graph, clean, mask, ablated)
    _close(pm(clean, mask, ab), ref, dtype)


def test_source_outputs_match_transformer_lens(kind):
    model = tiny_model(kind, torch.float64)
    clean = _tokens(0)
    pm = PatchableModel(model)
    ours = pm.source_outputs(clean)
    theirs = tl_source_outputs(model, clean)
    for i, name in enumerate(pm.graph.sources):
        _close(ours[i], theirs[name], torch.float64)


def test_gradients_match_finite_differences(kind):
    model = tiny_model(kind, torch.float64, n_layers=2, n_heads=2, d_model=8)
    clean, corrupt = _tokens(0, (2, 4)), _tokens(1, (2, 4))
    for gc in [GraphConfig(), GraphConfig(split_qkv=False), GraphConfig(positions=4)]:
        pm = PatchableModel(model, gc)
        ab = pm.ablate("resample", clean, corrupt)
        mask = torch.rand(2, pm.graph.n_edges, dtype=torch.float64, requires_grad=True)
        last = torch.tensor([3, 2])

        def f(m, pm=pm, ab=ab, last=last):
            return pm(clean, m, ab, out_positions=last).log_softmax(-1)[..., :5]

        assert torch.autograd.gradcheck(f, (mask,), eps=1e-6, atol=1e-6)


def test_per_position_constant_masks_equal_position_free(kind):
    dtype = torch.float64
    model = tiny_model(kind, dtype)
    clean, corrupt = _tokens(0), _tokens(1)
    flat = PatchableModel(model)
    pos = flat.with_graph(GraphConfig(positions=clean.shape[1]))
    mask = torch.rand(flat.graph.n_edges, dtype=dtype, generator=torch.Generator().manual_seed(4))
    per_pos = mask.repeat_interleave(clean.shape[1])
    a = flat(clean, mask, flat.ablate("resample", clean, corrupt))
    b = pos(clean, per_pos, pos.ablate("resample", clean, corrupt))
    _close(a, b, dtype)
    # an edge ablated at one position only changes the output
    one = per_pos.clone()
    one[pos.graph.edge_index("embed->logits@2")] = 0.0
    c = pos(clean, one, pos.ablate("resample", clean, corrupt))
    assert not torch.allclose(b, c)


def test_out_positions_selects_rows():
    model = tiny_model("gpt2", torch.float64)
    clean, corrupt = _tokens(0), _tokens(1)
    pm = PatchableModel(model)
    ab = pm.ablate("resample", clean, corrupt)
    mask = torch.rand(pm.graph.n_edges, dtype=torch.float64)
    full = pm(clean, mask, ab)
    pos = torch.tensor([5, 1, 3])
    _close(pm(clean, mask, ab, out_positions=pos), full[torch.arange(3), pos], torch.float64)


def test_masks_are_differentiable_and_params_untouched():
    model = tiny_model("gpt2")
    clean, corrupt = _tokens(0), _tokens(1)
    pm = PatchableModel(model)
    ab = pm.ablate("resample", clean, corrupt)
    mask = torch.full((pm.graph.n_edges,), 0.5, requires_grad=True)
    pm(clean, mask, ab).sum().backward()
    assert mask.grad is not None and mask.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.slow
def test_gpt2_small_shaped_exactness():
    model = gpt2_small_shaped(torch.float32)
    clean, corrupt = _tokens(0, (2, 8), 50257), _tokens(1, (2, 8), 50257)
    pm = PatchableModel(model)
    assert pm.graph.n_edges == 32491
    ab = pm.ablate("resample", clean, corrupt)
    _close(pm(clean, torch.ones(pm.graph.n_edges), ab), model(clean), torch.float32)
    _close(pm(clean, torch.zeros(pm.graph.n_edges), ab), model(corrupt), torch.float32)
    ablated = _ablated(model, "resample", clean, corrupt)
    mask = (torch.rand(pm.graph.n_edges, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    ref = reference_patched_logits(model, pm.graph, clean, mask, ablated)
    torch.testing.assert_close(pm(clean, mask, ab), ref, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("kind_", ["gpt2", "attn-only"])
def test_layerwise_scheme_agrees_with_one_pass(kind_):
    from eval.speed.layerwise import layerwise_logits

    model = tiny_model(kind_, torch.float64)
    clean, corrupt = _tokens(0), _tokens(1)
    pm = PatchableModel(model)
    ab = pm.ablate("resample", clean, corrupt)
    mask = torch.rand(pm.graph.n_edges, dtype=torch.float64, requires_grad=True)
    ours = pm(clean, mask, ab)
    slow = layerwise_logits(model, pm.graph, clean, mask, ab)
    _close(slow, ours, torch.float64)
    g1 = torch.autograd.grad(ours[:, -1].logsumexp(-1).sum(), mask)[0]
    g2 = torch.autograd.grad(slow[:, -1].logsumexp(-1).sum(), mask)[0]
    _close(g1, g2, torch.float64)


def test_logit_positions_unembeds_only_those():
    model = tiny_model("gpt2", torch.float64)
    clean, corrupt = _tokens(0), _tokens(1)
    pm = PatchableModel(model)
    ab = pm.ablate("resample", clean, corrupt)
    masks = torch.rand(2, pm.graph.n_edges, dtype=torch.float64)
    full = pm(clean, masks, ab)
    pos = torch.tensor([1, 5])
    part = pm(clean, masks, ab, logit_positions=pos)
    _close(part[:, :, pos], full[:, :, pos], torch.float64)
    assert part[:, :, [0, 2, 3, 4]].abs().sum() == 0


@pytest.mark.parametrize(
    "gc", [GraphConfig(), GraphConfig(split_qkv=False), GraphConfig(positions=6)]
)
def test_live_sources_equal_zeroed_outgoing_edges(kind, gc):
    """Skipping non-live sources == keeping them but ablating every edge out of them."""
    model = tiny_model(kind, torch.float64)
    clean, corrupt = _tokens(0), _tokens(1)
    pm = PatchableModel(model, gc)
    ab = pm.ablate("resample", clean, corrupt)
    g = pm.graph
    live = torch.ones(g.n_sources, dtype=torch.bool)
    for name in ["a0.h1", "a1.h0", "a1.h1", "a1.h2", "a1.h3", "a2.h3"] + (
        ["m1"] if g.has_mlp else []
    ):
        live[g.sources.index(name)] = False
    dead = {s for s, ok in zip(g.sources, live.tolist(), strict=True) if not ok}
    out_of_dead = torch.tensor([s in dead for s, _ in g.edge_pairs]).repeat_interleave(g.n_pos)
    masks = torch.rand(
        2, g.n_edges, dtype=torch.float64, generator=torch.Generator().manual_seed(5)
    )
    masks[:, out_of_dead] = 0.0
    a = masks.clone().requires_grad_(True)
    b = masks.clone().requires_grad_(True)
    full = pm(clean, a, ab)
    fast = pm(clean, b, ab, live=live)
    _close(fast, full, torch.float64)
    full[..., -1, :].logsumexp(-1).sum().backward()
    fast[..., -1, :].logsumexp(-1).sum().backward()
    keep = ~out_of_dead
    _close(b.grad[:, keep], a.grad[:, keep], torch.float64)
    with pytest.raises(ValueError, match="live"):
        pm(clean, masks[0], ab, live=live.float())
