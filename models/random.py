"""Random-weight models, built offline (no download): ``random/<family>`` and
``random/<family>-<shape>`` sources.

- ``random/<family>`` (gpt2, neox, llama, qwen2, gemma2; :mod:`models.families`): a tiny
  ``transformers`` model (3 layers, 4 query heads over 2 key/value heads, windows of 3 tokens,
  soft-caps 2 and 5) for the exactness tests and ``python -m patching.verify --family``. Weights
  are drawn with a large spread and the soft-caps and sliding windows are set small, so that every
  edge, norm, cap and window changes the output (a test built on them can fail).
- ``random/<family>-<shape>``: a published shape of the family with ``transformers``' random
  initialisation (``random/llama-3.2-1b``: ``python -m eval.speed --family llama``).
- ``random/gpt2-small``: GPT-2 small's configuration as a :class:`patching.hooked.HookedModel`
  with TransformerLens's random initialisation; GPT-2's weights can't be fetched on machines
  without hub access, and a model of its shape exercises the same graph (157 sources, 32,491
  edges) and the same FLOPs (``python -m eval.speed``, the GPT-2-small exactness test).
"""

from __future__ import annotations

import torch

from models.families import FAMILIES, family
from models.source import ModelSource, register_source


def tiny_hf_model(
    family_name: str,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    std: float = 0.3,
    **overrides,
):
    """A random ``transformers`` causal-LM of ``family_name``'s tiny config
    (:attr:`models.families.base.Family.tiny`), eager attention, in eval mode. ``overrides``
    change config fields (e.g. ``use_parallel_residual=False``)."""
    import transformers

    fam = family(family_name)
    cfg = fam.config(**overrides)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if p.dim() == 1 and ("norm" in name or "ln" in name) and name.endswith("weight"):
                p.copy_(0.1 * noise if fam.norm_one_plus else 1 + 0.1 * noise)
            else:
                p.copy_(std * noise)
    return model.to(dtype).eval()


def shaped_hf_model(
    family_name: str,
    shape: str,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    device: str = "cpu",
):
    """A ``transformers`` causal LM of a published shape of ``family_name``
    (:attr:`models.families.base.Family.shapes`) with ``transformers``' random initialisation."""
    import transformers

    torch.manual_seed(seed)
    cfg = family(family_name).config(shape)
    model = transformers.AutoModelForCausalLM.from_config(
        cfg, attn_implementation="eager", dtype=dtype
    )
    return model.to(device).eval()


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


# ----- sources ----------------------------------------------------------------------------------
def _dtype(dtype) -> torch.dtype:
    return torch.float32 if dtype is None else dtype


def _tiny(name: str) -> ModelSource:
    fam = FAMILIES[name]
    return ModelSource(
        name=f"random/{name}",
        kind="random",
        description=f"tiny random {name} ({fam.model_type}): {fam.description}",
        loader=lambda device, dtype: tiny_hf_model(name, _dtype(dtype)).to(device),
    )


def _shaped(name: str, shape: str) -> ModelSource:
    return ModelSource(
        name=f"random/{name}-{shape}",
        kind="random",
        description=f"random {name} of the published shape {shape}",
        loader=lambda device, dtype: shaped_hf_model(name, shape, _dtype(dtype), device=device),
    )


def _gpt2_small() -> ModelSource:
    return ModelSource(
        name="random/gpt2-small",
        kind="random",
        description="GPT-2 small's shape, random weights, a HookedModel (TransformerLens layout)",
        loader=lambda device, dtype: gpt2_small_shaped(_dtype(dtype), device=device),
    )


for _name, _fam in FAMILIES.items():
    register_source(f"random/{_name}", lambda n=_name: _tiny(n))
    for _shape in _fam.shapes:
        register_source(f"random/{_name}-{_shape}", lambda n=_name, s=_shape: _shaped(n, s))
register_source("random/gpt2-small", _gpt2_small)
