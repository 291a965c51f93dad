"""Adapter for TransformerLens 3 ``HookedTransformer`` models and the project's own
:class:`patching.hooked.HookedModel` (the same layout; works with TransformerLens 3 and 4)
(GPT-2-style sequential blocks).

Reads the weights as they are (views, no copies) into a :class:`ModelSpec`. Architectures the
TransformerLens path does not express (rotary, grouped-query attention, ...) raise
``NotImplementedError`` via :func:`patching.support.check_supported`; load those models through
the Hugging Face adapter instead.
"""

from __future__ import annotations

from patching.adapters.spec import MLP, Attention, Layer, ModelSpec, Norm
from patching.support import check_supported

_NORM_KINDS = {
    "LayerNorm": "layer",
    "LayerNormPre": "layer",
    "RMSNorm": "rms",
    "RMSNormPre": "rms",
    "Identity": "none",
}


def is_hooked_transformer(model) -> bool:
    """A TransformerLens 3 ``HookedTransformer`` or a :class:`patching.hooked.HookedModel`."""
    name = type(model).__name__
    return name in ("HookedTransformer", "HookedModel") and hasattr(model, "blocks")


def _norm(module, live: bool = False) -> Norm:
    kind = type(module).__name__
    if kind not in _NORM_KINDS:
        raise NotImplementedError(f"normalisation module {kind} is not supported by the graph")
    w = getattr(module, "w", None)
    b = getattr(module, "b", None)
    return Norm(
        _NORM_KINDS[kind],
        None if w is None else _read(w, live),
        None if b is None else _read(b, live),
        getattr(module, "eps", 1e-5),
    )


def _read(t, live: bool):
    """A parameter as the spec holds it: detached (inference), or the parameter itself
    (training mode: gradients reach the weights)."""
    return t if live else t.detach()


def _mlp(block, live: bool = False) -> MLP:
    mlp = block.mlp
    if type(mlp).__name__ != "MLP" or getattr(mlp, "ln", None) is not None:
        raise NotImplementedError(
            f"TransformerLens MLP {type(mlp).__name__} (gated or with a norm inside) is not "
            "supported through the TransformerLens adapter; load the model with transformers"
        )
    return MLP(
        w_in=_read(mlp.W_in, live).T,
        b_in=_read(mlp.b_in, live),
        w_out=_read(mlp.W_out, live).T,
        b_out=_read(mlp.b_out, live),
        act=mlp.act_fn,
    )


def _layer(block, attn_only: bool, live: bool = False) -> Layer:
    a = block.attn
    attn = Attention(
        **{n: _read(getattr(a, n), live) for n in ("W_Q", "W_K", "W_V", "W_O")},
        **{n: _read(getattr(a, n), live) for n in ("b_Q", "b_K", "b_V", "b_O")},
        scale=1.0 / float(a.attn_scale),
    )
    if attn_only:
        return Layer(_norm(block.ln1, live), attn)
    return Layer(_norm(block.ln1, live), attn, _norm(block.ln2, live), _mlp(block, live))


def from_hooked_transformer(model, live: bool = False) -> ModelSpec:
    """The :class:`ModelSpec` of a TransformerLens 3 ``HookedTransformer`` or a ``HookedModel``.

    live: hold the parameters themselves rather than detached views, so a forward over the
    spec is differentiable in the weights (``PatchableModel(..., trainable=True)``)."""
    cfg = model.cfg
    check_supported(cfg)
    has_final = cfg.normalization_type is not None and hasattr(model, "ln_final")
    return ModelSpec(
        family="hooked-transformer",
        layers=tuple(_layer(b, cfg.attn_only, live) for b in model.blocks),
        W_E=_read(model.W_E, live),
        W_U=_read(model.W_U, live).T,
        b_U=_read(model.b_U, live),
        W_pos=_read(model.W_pos, live),
        ln_final=_norm(model.ln_final, live) if has_final else Norm("none"),
        causal=cfg.attention_dir == "causal",
    )
