"""Which TransformerLens architectures the graph and the patched forward can express.

Each entry names a feature and a predicate on the config; a model that uses any of them gets a
``NotImplementedError`` naming it, instead of a silently wrong patched forward.
"""

from __future__ import annotations

from collections.abc import Callable

UNSUPPORTED: dict[str, Callable[[object], bool]] = {
    "parallel attention and MLP (GPT-J/NeoX style blocks)": lambda c: bool(
        getattr(c, "parallel_attn_mlp", False)
    ),
    "non-standard positional embeddings (rotary, shortformer, alibi, relative)": lambda c: (
        getattr(c, "positional_embedding_type", "standard") != "standard"
    ),
    "grouped-query attention (n_key_value_heads)": lambda c: (
        getattr(c, "n_key_value_heads", None) not in (None, c.n_heads)
    ),
    "query/key normalisation": lambda c: bool(getattr(c, "use_qk_norm", False)),
    "q/k/v clipping": lambda c: getattr(c, "clip_qkv", None) is not None,
    "log-n attention scaling": lambda c: bool(getattr(c, "use_logn_attn", False)),
    "local (sliding-window) attention": lambda c: (
        bool(getattr(c, "use_local_attn", False))
        or "local" in (getattr(c, "attn_types", None) or [])
    ),
    "attention score soft-capping": lambda c: (getattr(c, "attn_scores_soft_cap", 0) or 0) > 0,
    "output logit soft-capping": lambda c: (getattr(c, "output_logits_soft_cap", 0) or 0) > 0,
    "normalisation after attention/MLP outputs": lambda c: bool(
        getattr(c, "use_normalization_before_and_after", False)
    ),
    "post-norm blocks": lambda c: str(getattr(c, "original_architecture", "") or "").startswith(
        ("Olmo2", "Olmo3")
    ),
    "attention sinks": lambda c: bool(getattr(c, "use_attention_sinks", False)),
    "mixture-of-experts MLPs": lambda c: getattr(c, "num_experts", None) is not None,
    "post-embedding LayerNorm": lambda c: bool(getattr(c, "post_embedding_ln", False)),
    "4-bit quantised weights": lambda c: bool(getattr(c, "load_in_4bit", False)),
    "attention directions other than causal or bidirectional": lambda c: (
        getattr(c, "attention_dir", "causal") not in ("causal", "bidirectional")
    ),
}


def check_supported(cfg) -> None:
    """Raise ``NotImplementedError`` naming every feature of ``cfg`` the graph can't express."""
    missing = [name for name, uses in UNSUPPORTED.items() if uses(cfg)]
    if missing:
        raise NotImplementedError(
            "the edge graph does not support this architecture yet: "
            + "; ".join(missing)
            + ". Supported: sequential pre-norm blocks (LN, LNPre, RMS, or no normalisation), "
            "standard positional embeddings, multi-head attention, dense MLPs or attention-only."
        )


# ----- Hugging Face transformers ----------------------------------------------------------------
# Model types the adapters don't read, with the feature that stops them (a table, not an if-chain).
HF_UNSUPPORTED_TYPES: dict[str, str] = {
    "qwen3": "query/key RMSNorm inside attention (Qwen3's q_norm/k_norm)",
    "qwen3_next": "gated q_proj and linear-attention layers (Qwen3-Next)",
    "qwen3_moe": "mixture-of-experts MLPs",
    "qwen2_moe": "mixture-of-experts MLPs",
    "mixtral": "mixture-of-experts MLPs",
    "deepseek_v3": "mixture-of-experts MLPs and multi-head latent attention",
    "gemma3": "query/key norm and per-layer rotary bases (Gemma-3)",
    "olmo2": "query/key norm and post-norm-only blocks (OLMo-2)",
    "gptj": "interleaved rotary with parallel blocks sharing one norm (GPT-J)",
    "phi": "parallel blocks sharing one norm, partial rotary, q/k layernorm options (Phi)",
}

HF_UNSUPPORTED: dict[str, Callable[[object], bool]] = {
    "sequence-length-dependent rotary scaling (dynamic / longrope)": lambda c: (
        (getattr(c, "rope_parameters", None) or {}).get("rope_type", "default")
        in ("dynamic", "longrope")
    ),
    "GPT-2 cross-attention": lambda c: bool(getattr(c, "add_cross_attention", False)),
    "mixture-of-experts MLPs": lambda c: (
        (getattr(c, "num_experts", None) or 0) > 0
        or (getattr(c, "num_local_experts", None) or 0) > 0
    ),
    "q/k/v clipping": lambda c: getattr(c, "clip_qkv", None) is not None,
}


def check_hf_supported(cfg, families) -> None:
    """Raise ``NotImplementedError`` naming what a ``transformers`` config uses that the graph
    can't express (an unknown model type, or a feature of a supported one)."""
    kind = getattr(cfg, "model_type", None)
    if kind in HF_UNSUPPORTED_TYPES:
        raise NotImplementedError(
            f"model type {kind!r} is not supported: {HF_UNSUPPORTED_TYPES[kind]}. "
            f"Supported: {', '.join(sorted(families))}"
        )
    if kind not in families:
        raise NotImplementedError(
            f"model type {kind!r} has no adapter; supported: {', '.join(sorted(families))}"
        )
    missing = [name for name, uses in HF_UNSUPPORTED.items() if uses(cfg)]
    if missing:
        raise NotImplementedError(f"{kind} model uses unsupported features: " + "; ".join(missing))
