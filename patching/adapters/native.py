"""Adapter for TransformerLens 4's native model (``NativeModel``, what
``TransformerBridge.boot_native`` wraps): the TransformerLens-style architectures without a
``transformers`` counterpart (no-LayerNorm tracr models, attention-only models), on the line
that replaces ``HookedTransformer``.

Supported: LayerNorm / RMSNorm (with or without weights) or none, learned or rotary positions,
grouped-query attention, dense or gated MLPs, causal or bidirectional attention, attention and
output soft-caps. SoLU-LN MLPs raise ``NotImplementedError``.
"""

from __future__ import annotations

import torch
from torch import nn

from patching.adapters.spec import MLP, Attention, Layer, ModelSpec, Norm, Rotary


def _raw(module):
    """The native module under a bridge wrapper (``boot_native`` wraps each submodule)."""
    while hasattr(module, "original_component"):
        module = module.original_component
    return module


def is_native(model) -> bool:
    return type(model).__name__ == "NativeModel" and hasattr(model, "tok_embed")


def _norm(module) -> Norm:
    module = _raw(module)
    kind = type(module).__name__
    eps = float(getattr(module, "eps", 1e-5))
    table = {
        "LayerNorm": lambda: Norm("layer", module.weight.detach(), module.bias.detach(), eps),
        "NativeLayerNormPre": lambda: Norm("layer", None, None, eps),
        "NativeRMSNorm": lambda: Norm("rms", module.weight.detach(), None, eps),
        "NativeRMSNormPre": lambda: Norm("rms", None, None, eps),
        "Identity": lambda: Norm("none"),
    }
    if kind not in table:
        raise NotImplementedError(f"normalisation module {kind} has no adapter")
    return table[kind]()


def _heads(lin: nn.Linear, n: int, dh: int):
    w = lin.weight.detach().view(n, dh, -1).transpose(1, 2)
    b = lin.bias
    b = torch.zeros(n, dh, dtype=w.dtype, device=w.device) if b is None else b.detach().view(n, dh)
    return w, b


def _attention(a) -> Attention:
    a = _raw(a)
    H, Hkv, dh = a.n_heads, a.n_kv_heads, a.d_head
    WQ, bQ = _heads(_raw(a.q), H, dh)
    WK, bK = _heads(_raw(a.k), Hkv, dh)
    WV, bV = _heads(_raw(a.v), Hkv, dh)
    o = _raw(a.o)
    WO = o.weight.detach().view(-1, H, dh).permute(1, 2, 0)
    bO = (
        o.bias.detach()
        if o.bias is not None
        else torch.zeros(WO.shape[-1], dtype=WO.dtype, device=WO.device)
    )
    cap = float(a.attn_scores_soft_cap)
    return Attention(
        WQ, WK, WV, WO, bQ, bK, bV, bO, scale=1.0 / float(a.scale), softcap=cap if cap > 0 else None
    )


def _linear(lin) -> tuple:
    lin = _raw(lin)
    return lin.weight.detach(), None if lin.bias is None else lin.bias.detach()


def _mlp(m) -> MLP:
    m = _raw(m)
    if type(m).__name__ == "NativeGatedMLP":
        (w_in, _), (w_out, _), (w_gate, _) = (_linear(getattr(m, n)) for n in ("in", "out", "gate"))
        return MLP(w_in, None, w_out, None, m.act, w_gate)
    if getattr(m, "ln", None) is not None:
        raise NotImplementedError("SoLU-LN MLPs (a LayerNorm inside the MLP) have no adapter")
    return MLP(*_linear(m.fc_in), *_linear(m.fc_out), m.act)


def _rotary(rot) -> Rotary:
    """The native tables are ``cos((pos / position_scale) * inv_freq)`` on adjacent pairs."""
    d = rot.rotary_dim
    base = float(rot.effective_base)
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    return Rotary(inv_freq / float(rot.position_scale), interleaved=True)


def from_native(model) -> ModelSpec:
    """The :class:`ModelSpec` of a TransformerLens 4 ``NativeModel``."""
    layers = []
    model = _raw(model)
    for blk in model.layers:
        blk = _raw(blk)
        attn = _attention(blk.attn)
        if hasattr(blk, "mlp"):
            layers.append(Layer(_norm(blk.ln1), attn, _norm(blk.ln2), _mlp(blk.mlp)))
        else:
            layers.append(Layer(_norm(blk.ln1), attn))
    cap = float(model.output_logits_soft_cap)
    W_U, b_U = _linear(model.head)
    return ModelSpec(
        family="transformer-lens-native",
        layers=tuple(layers),
        W_E=_raw(model.tok_embed).weight.detach(),
        W_U=W_U,
        b_U=b_U,
        W_pos=None if model.pos is None else _raw(model.pos).weight.detach(),
        ln_final=_norm(model.ln_out),
        rotary=None if model.rotary is None else _rotary(_raw(model.rotary)),
        causal=bool(_raw(_raw(model.layers[0]).attn).causal),
        logit_softcap=cap if cap > 0 else None,
    )
