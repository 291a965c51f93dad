"""TransformerLens 4's native model (``TransformerBridge.boot_native``): the line that replaces
``HookedTransformer`` for models without a ``transformers`` counterpart (tracr-style
no-LayerNorm, attention-only). Skipped where TransformerLens has no native source (3.x)."""

from __future__ import annotations

import pytest
import torch

from patching import PatchableModel

native = pytest.importorskip("transformer_lens.model_bridge.sources.native")
config_mod = pytest.importorskip("transformer_lens.config")
if not hasattr(native, "boot") or not hasattr(config_mod, "TransformerBridgeConfig"):
    pytest.skip(
        "this TransformerLens has no native model source (4.x has)", allow_module_level=True
    )

BASE = dict(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, d_vocab=50, n_ctx=16)
KINDS = {
    "gpt2-like": dict(act_fn="gelu_new", normalization_type="LN"),
    "tracr-like": dict(act_fn="relu", normalization_type=None, attention_dir="bidirectional"),
    "attn-only": dict(attn_only=True, normalization_type="LNPre"),
    "llama-like": dict(
        act_fn="silu",
        normalization_type="RMS",
        final_rms=True,
        gated_mlp=True,
        n_key_value_heads=2,
        positional_embedding_type="rotary",
        rotary_dim=8,
    ),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_native_bridge_masks_one_and_zero(kind):
    cfg = config_mod.TransformerBridgeConfig(**BASE, **KINDS[kind], seed=0)
    bridge = native.boot(cfg, device="cpu")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in bridge.original_model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            p.copy_(1 + 0.1 * noise if p.dim() == 1 and "ln" in name else 0.3 * noise)
    clean, corrupt = (torch.randint(0, 50, (2, 6), generator=gen) for _ in range(2))
    pm = PatchableModel(bridge)
    ab = pm.ablate("resample", clean, corrupt)
    with torch.no_grad():
        own, own_corrupt = bridge(clean), bridge(corrupt)
    ones = pm(clean, torch.ones(pm.graph.n_edges), ab)
    zeros = pm(clean, torch.zeros(pm.graph.n_edges), ab)
    tol = 1e-5 * max(1.0, own.abs().max().item())  # float32, relative to the logits' scale
    assert (ones - own).abs().max().item() <= tol
    assert (zeros - own_corrupt).abs().max().item() <= tol
    assert (own - own_corrupt).abs().max().item() > 0.5
