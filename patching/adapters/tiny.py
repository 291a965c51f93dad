"""Tiny random-weight ``transformers`` models of each supported family, built offline from a
config (no download), for the exactness tests and ``python -m patching.verify --family``.

Weights are drawn with a large spread and the soft-caps and sliding windows are set small, so
that every edge, norm, cap and window changes the output (a test built on them can fail).
"""

from __future__ import annotations

import torch

_COMMON = dict(vocab_size=50, max_position_embeddings=64, tie_word_embeddings=False)
_LLAMA = dict(
    hidden_size=32,
    intermediate_size=48,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    rms_norm_eps=1e-6,
    hidden_act="silu",
)

# family -> (transformers config class name, config kwargs)
TINY: dict[str, tuple[str, dict]] = {
    "gpt2": (
        "GPT2Config",
        dict(n_embd=32, n_layer=3, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0),
    ),
    "neox": (
        "GPTNeoXConfig",
        dict(
            hidden_size=32,
            num_hidden_layers=3,
            num_attention_heads=4,
            intermediate_size=64,
            rotary_pct=0.5,
            use_parallel_residual=True,
        ),
    ),
    "llama": ("LlamaConfig", dict(num_hidden_layers=3, **_LLAMA)),
    "qwen2": (
        "Qwen2Config",
        dict(
            num_hidden_layers=3,
            use_sliding_window=True,
            sliding_window=3,
            max_window_layers=1,
            **_LLAMA,
        ),
    ),
    "gemma2": (
        "Gemma2Config",
        dict(
            num_hidden_layers=3,
            query_pre_attn_scalar=8,
            sliding_window=3,
            attn_logit_softcapping=2.0,
            final_logit_softcapping=5.0,
            hidden_activation="gelu_pytorch_tanh",
            **{k: v for k, v in _LLAMA.items() if k != "hidden_act"},
        ),
    ),
}


def tiny_hf_model(
    family: str,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    std: float = 0.3,
    **overrides,
):
    """A random ``transformers`` causal-LM of ``family`` (see :data:`TINY`), eager attention,
    in eval mode. ``overrides`` change config fields (e.g. ``use_parallel_residual=False``)."""
    import transformers

    if family not in TINY:
        raise ValueError(f"unknown family {family!r}; choose one of {sorted(TINY)}")
    cls_name, kw = TINY[family]
    cfg = getattr(transformers, cls_name)(**{**_COMMON, **kw, **overrides})
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    gen = torch.Generator().manual_seed(seed)
    one_plus = family == "gemma2"  # Gemma's RMSNorm stores w for a (1 + w) scale
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if p.dim() == 1 and ("norm" in name or "ln" in name) and name.endswith("weight"):
                p.copy_(0.1 * noise if one_plus else 1 + 0.1 * noise)
            else:
                p.copy_(std * noise)
    return model.to(dtype).eval()
