"""Exactness of the patched forward on tiny random ``transformers`` models of every family:
against the model's own logits (masks 1 and 0), the independent slow reference
(``tests/patching/reference_families.py``), finite differences, and ``live=`` skipping."""

from __future__ import annotations

import pytest
import torch

from models import families
from models.random import tiny_hf_model
from patching import GraphConfig, PatchableModel
from tests.patching.reference_families import reference_ablated, reference_logits

FAMILIES = sorted(families.FAMILIES)
# Against transformers: its RMSNorm, softmax and rotary run in float32 even in a float64 model,
# so float64 agreement is at float32 level except for GPT-2 (measured max |diff| <= 3.1e-6).
HF_TOL = {torch.float32: 1e-4, torch.float64: 2e-5}
HF_TOL_F64_GPT2 = 1e-10
# Against the independent float64 reference (measured max |diff| <= 1.0e-14).
REF_TOL = {torch.float32: 2e-4, torch.float64: 1e-10}
GRAPHS = [
    GraphConfig(),
    GraphConfig(split_qkv=False),
    GraphConfig(positions=6),
    GraphConfig(include_mlp=False),
]
# variants beyond the default tiny model of a family: sequential NeoX, Llama without grouping,
# Llama-3 rope scaling
LLAMA3_ROPE = dict(
    rope_type="llama3",
    factor=8.0,
    low_freq_factor=1.0,
    high_freq_factor=4.0,
    original_max_position_embeddings=8,
    rope_theta=500000.0,
)
VARIANTS = [
    ("neox", dict(use_parallel_residual=False)),
    ("llama", dict(num_key_value_heads=4)),
    ("llama", dict(rope_parameters=LLAMA3_ROPE)),  # Llama-3's rescaled rotary frequencies
]


def _tokens(seed: int, shape=(3, 6)):
    return torch.randint(0, 50, shape, generator=torch.Generator().manual_seed(seed))


def _hf_tol(family: str, dtype: torch.dtype) -> float:
    return HF_TOL_F64_GPT2 if (family, dtype) == ("gpt2", torch.float64) else HF_TOL[dtype]


def _max_diff(a, b) -> float:
    return (a - b).abs().max().item()


@pytest.fixture(scope="module", params=FAMILIES + [f"{f}:{i}" for i, (f, _) in enumerate(VARIANTS)])
def family(request):
    return request.param


def _model(family: str, dtype: torch.dtype):
    if ":" in family:
        name, i = family.split(":")
        return name, tiny_hf_model(name, dtype, **VARIANTS[int(i)][1])
    return family, tiny_hf_model(family, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_masks_one_and_zero_are_the_models_own_logits(family, dtype):
    name, model = _model(family, dtype)
    clean, corrupt = _tokens(0), _tokens(1)
    with torch.no_grad():
        hf_clean, hf_corrupt = model(clean).logits, model(corrupt).logits
    tol = _hf_tol(name, dtype)
    assert _max_diff(hf_clean, hf_corrupt) > 1.0  # the two checks can tell the runs apart
    for gc in GRAPHS:
        pm = PatchableModel(model, gc)
        ab = pm.ablate("resample", clean, corrupt)
        ones = pm(clean, torch.ones(pm.graph.n_edges, dtype=dtype), ab)
        assert _max_diff(ones, hf_clean) <= tol, (gc, _max_diff(ones, hf_clean))
        if gc.include_mlp:  # with MLPs held clean, all-zero masks are not the corrupted run
            zeros = pm(clean, torch.zeros(pm.graph.n_edges, dtype=dtype), ab)
            assert _max_diff(zeros, hf_corrupt) <= tol, (gc, _max_diff(zeros, hf_corrupt))


@pytest.mark.parametrize("ablation", ["resample", "mean", "zero"])
def test_random_masks_match_independent_reference(family, ablation):
    dtype = torch.float64
    _, model = _model(family, dtype)
    clean, corrupt = _tokens(0), _tokens(1)
    gen = torch.Generator().manual_seed(2)
    for gc in GRAPHS[:3]:
        pm = PatchableModel(model, gc)
        ab = pm.ablate(ablation, clean, corrupt, reference=corrupt)
        ablated = reference_ablated(model, pm.graph, ablation, corrupt)
        E = pm.graph.n_edges
        binary = (torch.rand(E, generator=gen) < 0.5).to(dtype)
        masks = torch.stack([binary, torch.rand(E, generator=gen, dtype=dtype)])  # [K=2, E]
        batched = pm(clean, masks, ab)
        for k in range(2):
            ref = reference_logits(model, pm.graph, clean, masks[k], ablated)
            assert _max_diff(batched[k], ref) <= REF_TOL[dtype]
            assert _max_diff(pm(clean, masks[k], ab), ref) <= REF_TOL[dtype]
        assert _max_diff(batched[0], model(clean).logits) > 0.1  # the masks matter


def test_float32_matches_reference(family):
    dtype = torch.float32
    _, model = _model(family, dtype)
    clean, corrupt = _tokens(0), _tokens(1)
    pm = PatchableModel(model)
    ab = pm.ablate("resample", clean, corrupt)
    mask = torch.rand(pm.graph.n_edges, generator=torch.Generator().manual_seed(3))
    ref = reference_logits(
        model, pm.graph, clean, mask, reference_ablated(model, pm.graph, "resample", corrupt)
    )
    assert _max_diff(pm(clean, mask, ab), ref) <= REF_TOL[dtype]


def test_source_outputs_match_reference(family):
    _, model = _model(family, torch.float64)
    clean = _tokens(0)
    pm = PatchableModel(model)
    ours = pm.source_outputs(clean)
    theirs = reference_logits(model, pm.graph, clean, collect=True)
    for i, name in enumerate(pm.graph.sources):
        assert _max_diff(ours[i], theirs[name]) <= REF_TOL[torch.float64], name


@pytest.mark.parametrize("name", FAMILIES)
def test_gradients_match_finite_differences(name):
    model = (
        tiny_hf_model(name, torch.float64, num_hidden_layers=2)
        if name != "gpt2"
        else (tiny_hf_model(name, torch.float64, n_layer=2))
    )
    clean, corrupt = _tokens(0, (2, 4)), _tokens(1, (2, 4))
    pm = PatchableModel(model)
    ab = pm.ablate("resample", clean, corrupt)
    mask = torch.rand(2, pm.graph.n_edges, dtype=torch.float64, requires_grad=True)
    last = torch.tensor([3, 2])

    def f(m):
        return pm(clean, m, ab, out_positions=last).log_softmax(-1)[..., :5]

    assert torch.autograd.gradcheck(f, (mask,), eps=1e-6, atol=1e-6, fast_mode=True)


def test_live_skipping_equals_full_forward(family):
    dtype = torch.float64
    _, model = _model(family, dtype)
    clean, corrupt = _tokens(0), _tokens(1)
    pm = PatchableModel(model)
    g = pm.graph
    ab = pm.ablate("resample", clean, corrupt)
    gen = torch.Generator().manual_seed(5)
    live = torch.rand(g.n_sources, generator=gen) < 0.5
    live[0] = True
    mask = torch.rand(g.n_edges, generator=gen, dtype=dtype)
    dead = {s for s, keep in zip(g.sources, live.tolist(), strict=True) if not keep}
    for i, (s, _) in enumerate(g.edge_pairs):
        if s in dead:
            mask[i] = 0.0
    full = pm(clean, mask, ab)
    skipped = pm(clean, mask, ab, live=live)
    assert _max_diff(full, skipped) <= REF_TOL[dtype]
    assert _max_diff(full, model(clean).logits) > 0.1


def test_full_jacobian_matches_finite_differences_gemma2():
    """Every column of the Jacobian (not random projections) on the most involved family."""
    model = tiny_hf_model("gemma2", torch.float64, num_hidden_layers=2)
    clean, corrupt = _tokens(0, (2, 4)), _tokens(1, (2, 4))
    pm = PatchableModel(model)
    ab = pm.ablate("resample", clean, corrupt)
    mask = torch.rand(pm.graph.n_edges, dtype=torch.float64, requires_grad=True)

    def f(m):
        return pm(clean, m, ab, out_positions=torch.tensor([3, 2])).log_softmax(-1)[..., :3]

    assert torch.autograd.gradcheck(f, (mask,), eps=1e-6, atol=1e-6)
