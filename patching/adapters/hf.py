"""Adapter for Hugging Face ``transformers`` causal-LM models: GPT-2, GPT-NeoX/Pythia, Llama,
Qwen2/Qwen2.5 and Gemma-2 (one reader per ``config.model_type``, in :data:`FAMILIES`; the rest
of a family, its tiny random config and the like, is ``models/families/<name>.py``).

Semantics per family (what the patched forward reproduces; see ``patching.adapters.spec``):

- ``gpt2``: learned absolute positions, LayerNorm, GELU (tanh) MLP, sequential blocks.
- ``gpt_neox`` (Pythia): partial rotary (``partial_rotary_factor`` of each head), LayerNorm,
  parallel attention and MLP when ``use_parallel_residual`` (the MLP of layer l reads the same
  residual as the heads of layer l, so those heads are not upstream of ``m{l}``).
- ``llama``: RMSNorm, rotary (incl. Llama-3 frequency scaling, read from the model's
  ``inv_freq``), grouped-query attention, SwiGLU MLP.
- ``qwen2``: as Llama, with q/k/v biases and optional sliding-window layers.
- ``gemma2``: RMSNorm with ``(1 + w)``, embedding scaled by ``sqrt(d_model)``, post-norms after
  attention and MLP (part of the source's output), attention-logit and final-logit soft-caps,
  GeGLU (tanh GELU), sliding-window attention on the layers ``layer_types`` marks.

Anything else raises ``NotImplementedError`` naming the feature.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from patching.adapters.spec import MLP, Attention, Layer, ModelSpec, Norm, Rotary
from patching.support import check_hf_supported


def is_hf_causal_lm(model) -> bool:
    try:
        from transformers import PreTrainedModel
    except ImportError:  # transformers not installed: nothing can be a transformers model
        return False
    return isinstance(model, PreTrainedModel)


def _d(t):
    return None if t is None else t.detach()


def _heads(weight, bias, n: int, dh: int):
    """``nn.Linear`` q/k/v projection ``[n*dh, D]`` -> per head ``[n, D, dh]``, bias ``[n, dh]``."""
    w = weight.detach().view(n, dh, -1).transpose(1, 2)
    b = torch.zeros(n, dh, dtype=w.dtype, device=w.device) if bias is None else bias.detach()
    return w, b.view(n, dh)


def _out_heads(weight, bias, n: int, dh: int):
    """``nn.Linear`` output projection ``[D, n*dh]`` -> ``W_O [n, dh, D]`` and ``b_O [D]``."""
    w = weight.detach().view(-1, n, dh).permute(1, 2, 0)
    b = torch.zeros(w.shape[-1], dtype=w.dtype, device=w.device) if bias is None else bias
    return w, b.detach()


def _rms(module, one_plus: bool = False) -> Norm:
    eps = getattr(module, "variance_epsilon", None) or getattr(module, "eps", 1e-6)
    w = module.weight.detach()
    return Norm("rms", 1 + w if one_plus else w, None, float(eps))


def _ln(module) -> Norm:
    return Norm("layer", _d(module.weight), _d(module.bias), float(module.eps))


def _rotary(rotary_emb) -> Rotary:
    return Rotary(rotary_emb.inv_freq.detach(), scaling=float(rotary_emb.attention_scaling))


def _linear_mlp(up, down, act, gate=None, post_norm=None) -> MLP:
    return MLP(
        w_in=up.weight.detach(),
        b_in=_d(up.bias),
        w_out=down.weight.detach(),
        b_out=_d(down.bias),
        act=act,
        w_gate=None if gate is None else gate.weight.detach(),
        b_gate=None if gate is None else _d(gate.bias),
        post_norm=post_norm,
    )


def _qkvo_attention(attn, cfg, post_norm: Norm | None = None) -> Attention:
    """Separate ``q_proj``/``k_proj``/``v_proj``/``o_proj`` (Llama, Qwen2, Gemma-2)."""
    H, Hkv, dh = cfg.num_attention_heads, cfg.num_key_value_heads, attn.head_dim
    WQ, bQ = _heads(attn.q_proj.weight, attn.q_proj.bias, H, dh)
    WK, bK = _heads(attn.k_proj.weight, attn.k_proj.bias, Hkv, dh)
    WV, bV = _heads(attn.v_proj.weight, attn.v_proj.bias, Hkv, dh)
    WO, bO = _out_heads(attn.o_proj.weight, attn.o_proj.bias, H, dh)
    return Attention(
        WQ,
        WK,
        WV,
        WO,
        bQ,
        bK,
        bV,
        bO,
        scale=float(attn.scaling),
        softcap=getattr(attn, "attn_logit_softcapping", None),
        window=getattr(attn, "sliding_window", None),
        post_norm=post_norm,
    )


def _llama_like(model, family: str) -> ModelSpec:
    cfg, base = model.config, model.model
    gemma = family == "gemma2"
    layers = []
    for blk in base.layers:
        if gemma:
            attn = _qkvo_attention(blk.self_attn, cfg, _rms(blk.post_attention_layernorm, True))
            ln2 = _rms(blk.pre_feedforward_layernorm, True)
            post = _rms(blk.post_feedforward_layernorm, True)
        else:
            attn, ln2, post = (
                _qkvo_attention(blk.self_attn, cfg),
                _rms(blk.post_attention_layernorm),
                None,
            )
        m = blk.mlp
        mlp = _linear_mlp(m.up_proj, m.down_proj, m.act_fn, gate=m.gate_proj, post_norm=post)
        layers.append(Layer(_rms(blk.input_layernorm, gemma), attn, ln2, mlp))
    scale = getattr(base.embed_tokens, "embed_scale", None)
    return ModelSpec(
        family=family,
        layers=tuple(layers),
        W_E=base.embed_tokens.weight.detach(),
        W_U=model.lm_head.weight.detach(),
        b_U=_d(model.lm_head.bias),
        ln_final=_rms(base.norm, gemma),
        embed_scale=None if scale is None else scale.detach(),
        rotary=_rotary(base.rotary_emb),
        causal=all(blk.self_attn.is_causal for blk in base.layers),
        logit_softcap=getattr(cfg, "final_logit_softcapping", None),
    )


def _neox(model, family: str) -> ModelSpec:
    cfg, base = model.config, model.gpt_neox
    H = cfg.num_attention_heads
    layers = []
    for blk in base.layers:
        a = blk.attention
        dh = a.head_size
        w = a.query_key_value.weight.detach().view(H, 3, dh, -1).transpose(2, 3)  # [H,3,D,dh]
        b = a.query_key_value.bias
        b = (
            torch.zeros(H, 3, dh, dtype=w.dtype, device=w.device)
            if b is None
            else b.detach().view(H, 3, dh)
        )
        WO, bO = _out_heads(a.dense.weight, a.dense.bias, H, dh)
        attn = Attention(
            w[:, 0], w[:, 1], w[:, 2], WO, b[:, 0], b[:, 1], b[:, 2], bO, float(a.scaling)
        )
        mlp = _linear_mlp(blk.mlp.dense_h_to_4h, blk.mlp.dense_4h_to_h, blk.mlp.act)
        layers.append(Layer(_ln(blk.input_layernorm), attn, _ln(blk.post_attention_layernorm), mlp))
    return ModelSpec(
        family=family,
        layers=tuple(layers),
        W_E=base.embed_in.weight.detach(),
        W_U=model.get_output_embeddings().weight.detach(),
        ln_final=_ln(base.final_layer_norm),
        rotary=_rotary(base.rotary_emb),
        parallel=bool(cfg.use_parallel_residual),
    )


def _gpt2(model, family: str) -> ModelSpec:
    cfg, base = model.config, model.transformer
    H, D = cfg.n_head, cfg.n_embd
    dh = D // H
    layers = []
    for blk in base.h:
        a = blk.attn
        w = a.c_attn.weight.detach().view(D, 3, H, dh).permute(1, 2, 0, 3)  # [3, H, D, dh]
        b = a.c_attn.bias.detach().view(3, H, dh)
        WO = a.c_proj.weight.detach().view(H, dh, D)
        attn = Attention(
            w[0], w[1], w[2], WO, b[0], b[1], b[2], a.c_proj.bias.detach(), float(a.scaling)
        )
        m = blk.mlp
        mlp = MLP(
            m.c_fc.weight.detach().T,
            m.c_fc.bias.detach(),
            m.c_proj.weight.detach().T,
            m.c_proj.bias.detach(),
            m.act,
        )
        layers.append(Layer(_ln(blk.ln_1), attn, _ln(blk.ln_2), mlp))
    return ModelSpec(
        family=family,
        layers=tuple(layers),
        W_E=base.wte.weight.detach(),
        W_U=model.lm_head.weight.detach(),
        b_U=_d(model.lm_head.bias),
        W_pos=base.wpe.weight.detach(),
        ln_final=_ln(base.ln_f),
    )


FAMILIES: dict[str, Callable[[object, str], ModelSpec]] = {
    "gpt2": _gpt2,
    "gpt_neox": _neox,
    "llama": _llama_like,
    "qwen2": _llama_like,
    "gemma2": _llama_like,
}


def from_hf(model) -> ModelSpec:
    """The :class:`ModelSpec` of a ``transformers`` causal-LM model of a supported family."""
    cfg = model.config
    check_hf_supported(cfg, FAMILIES)
    return FAMILIES[cfg.model_type](model, cfg.model_type)
