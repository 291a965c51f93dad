"""Random-weight models of published shapes, for exactness and speed work offline.

GPT-2's weights can't be fetched on machines without hub access; a model of its shape with
TransformerLens's random initialisation exercises the same graph (157 sources, 32,491 edges)
and the same FLOPs.
"""

from __future__ import annotations

import torch


def gpt2_small_shaped(dtype: torch.dtype = torch.float32, seed: int = 0, device: str = "cpu"):
    """A :class:`patching.hooked.HookedModel` with GPT-2 small's configuration and random weights
    (TransformerLens's initialisation: the same weights as a seeded ``HookedTransformer``)."""
    from patching.hooked import HookedConfig, HookedModel

    cfg = HookedConfig(
        n_layers=12,
        n_heads=12,
        d_model=768,
        d_head=64,
        d_mlp=3072,
        d_vocab=50257,
        n_ctx=1024,
        act_fn="gelu_new",
        normalization_type="LN",
        seed=seed,
        dtype=dtype,
        device=device,
    )
    return HookedModel(cfg).eval()
