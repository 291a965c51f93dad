"""Tiny seeded models shared by the tests (``tests/models/`` also tests the :mod:`models`
package)."""

from __future__ import annotations

import torch

from patching.hooked import HookedConfig, HookedModel

KINDS = {
    # GPT-2 style: LayerNorm, GELU MLPs
    "gpt2": dict(act_fn="gelu_new", normalization_type="LN"),
    # attention-only
    "attn-only": dict(attn_only=True, normalization_type="LN"),
    # no LayerNorm, ReLU MLPs (as tracr-compiled models)
    "no-ln": dict(act_fn="relu", normalization_type=None),
}


def tiny_model(
    kind: str = "gpt2",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    n_layers: int = 3,
    n_heads: int = 4,
    d_model: int = 32,
    d_vocab: int = 50,
    std: float | None = None,
) -> HookedModel:
    """A random-weight HookedModel (TransformerLens 3 ``HookedTransformer`` layout); weights
    drawn with a large std so every edge matters
    (smaller without LayerNorm, where activations otherwise grow to ~1e3)."""
    if std is None:
        std = 0.12 if KINDS[kind].get("normalization_type", "LN") is None else 0.3
    cfg = HookedConfig(
        n_layers=n_layers,
        n_heads=n_heads,
        d_model=d_model,
        d_head=d_model // n_heads,
        d_mlp=4 * d_model,
        d_vocab=d_vocab,
        n_ctx=32,
        seed=seed,
        dtype=dtype,
        **KINDS[kind],
    )
    model = HookedModel(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".w") and "ln" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
            else:
                p.copy_(std * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model.eval()
