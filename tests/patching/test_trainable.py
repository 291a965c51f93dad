"""Training mode of the one patched forward (``PatchableModel(..., trainable=True)``): the same
logits as inference mode, and weight gradients equal to independent references (the model's own
forward at masks 1; central finite differences of the inference-mode forward at other masks)."""

from __future__ import annotations

import pytest
import torch

from patching.graph import GraphConfig
from patching.hooked import HookedConfig, HookedModel
from patching.patched import PatchableModel


def _model(seed: int = 0, causal: bool = True) -> HookedModel:
    cfg = HookedConfig(
        n_layers=2,
        d_model=12,
        n_ctx=6,
        d_head=3,
        n_heads=4,
        d_mlp=16,
        act_fn="gelu",
        d_vocab=7,
        d_vocab_out=5,
        attention_dir="causal" if causal else "bidirectional",
        seed=seed,
        dtype=torch.float64,
    )
    model = HookedModel(cfg)
    with torch.no_grad():  # LayerNorm weights and biases away from 1 and 0, so folding matters
        for name, p in model.named_parameters():
            if name.endswith((".w", ".b")) or "b_" in name:
                p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def _tokens(seed: int, n: int = 3, pos: int = 5) -> torch.Tensor:
    return torch.randint(7, (n, pos), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("split", [True, False])
def test_masks_one_give_the_models_own_logits_and_weight_gradients(split):
    model = _model()
    pm = PatchableModel(model, GraphConfig(split_qkv=split), trainable=True)
    tokens = _tokens(0)
    ab = pm.ablate("resample", tokens, _tokens(1))
    ones = torch.ones(pm.graph.n_edges, dtype=torch.float64)
    ours = pm(tokens, ones, ab)
    ref = model(tokens)
    assert torch.allclose(ours, ref, atol=1e-10)
    w = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    g_ours = torch.autograd.grad((ours * w).sum(), list(model.parameters()), allow_unused=True)
    g_ref = torch.autograd.grad((ref * w).sum(), list(model.parameters()), allow_unused=True)
    for (name, _), a, b in zip(model.named_parameters(), g_ours, g_ref, strict=True):
        a = torch.zeros(()) if a is None else a
        b = torch.zeros(()) if b is None else b
        assert torch.allclose(a, b, atol=1e-9), name


def test_patched_gradients_match_finite_differences_of_inference_mode():
    model = _model(3, causal=False)
    tokens, other = _tokens(4), _tokens(5)
    pm = PatchableModel(model, GraphConfig(split_qkv=True), trainable=True)
    values = pm.ablate("resample", tokens, other).values  # constants of the step
    gen = torch.Generator().manual_seed(6)
    masks = torch.rand(2, pm.graph.n_edges, generator=gen, dtype=torch.float64)
    masks[:, ::3] = 0.0
    out = pm(tokens, masks, pm.ablated_sources(values))
    frozen = PatchableModel(model, GraphConfig(split_qkv=True))  # the inference reference
    w = torch.randn(out.shape, dtype=torch.float64, generator=gen)
    assert torch.allclose(out, frozen(tokens, masks, frozen.ablated_sources(values)), atol=1e-10)
    model.requires_grad_(True)
    grads = torch.autograd.grad((out * w).sum(), list(model.parameters()), allow_unused=True)

    def loss() -> float:
        ref = PatchableModel(model, GraphConfig(split_qkv=True))
        return float((ref(tokens, masks, ref.ablated_sources(values)) * w).sum())

    checked = 0
    for (name, p), g in zip(model.named_parameters(), grads, strict=True):
        for _ in range(2):
            i = int(torch.randint(p.numel(), (1,), generator=gen))
            flat = p.data.view(-1)
            keep = float(flat[i])
            eps = 1e-5
            flat[i] = keep + eps
            up = loss()
            flat[i] = keep - eps
            down = loss()
            flat[i] = keep
            fd = (up - down) / (2 * eps)
            got = 0.0 if g is None else float(g.view(-1)[i])
            assert got == pytest.approx(fd, rel=1e-5, abs=1e-7), (name, i)
            checked += 1
    assert checked >= 2 * len(grads)


def test_training_mode_follows_the_optimiser_and_inference_mode_freezes():
    model = _model(7)
    pm = PatchableModel(model, trainable=True)
    assert all(p.requires_grad for p in model.parameters())
    tokens = _tokens(8)
    ones = torch.ones(pm.graph.n_edges, dtype=torch.float64)
    ab = pm.ablate("zero", tokens)
    before = pm(tokens, ones, ab).detach()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    pm(tokens, ones, ab).square().mean().backward()
    opt.step()
    after = pm(tokens, ones, ab).detach()
    assert not torch.allclose(before, after)
    assert torch.allclose(after, model(tokens), atol=1e-10)  # folded weights were re-read
    PatchableModel(model)
    assert not any(p.requires_grad for p in model.parameters())


def test_training_mode_refuses_models_it_cannot_read_live():
    from models.random import tiny_hf_model

    with pytest.raises(NotImplementedError, match="HookedModel"):
        PatchableModel(tiny_hf_model("gpt2"), trainable=True)
