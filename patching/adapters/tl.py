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


def _norm(module) -> Norm:
    kind = type(module).__name__
    if kind not in _NORM_KINDS:
        raise NotImplementedError(f"normalisation module {kind} is not supported by the graph")
    w = getattr(module, "w", None)
    b = getattr(module, "b", None)
    return Norm(
        _NORM_KINDS[kind],
        None if w is None else w.detach(),
        None if b is None else b.detach(),
        getattr(module, "eps", 1e-5),
    )


def _mlp(block) -> MLP:
    mlp = block.mlp
    if type(mlp).__name__ != "MLP" or getattr(mlp, "ln", None) is not None:
        raise NotImplementedError(
            f"TransformerLens MLP {type(mlp).__name__} (gated or with a norm inside) is not "
            "supported through the TransformerLens adapter; load the model with transformers"
        )
    return MLP(
        w_in=mlp.W_in.detach().T,
        b_in=mlp.b_in.detach(),
        w_out=mlp.W_out.detach().T,
        b_out=mlp.b_out.detach(),
        act=mlp.act_fn,
    )


def _layer(block, attn_only: bool) -> Layer:
    a = block.attn
    attn = Attention(
        W_Q=a.W_Q.detach(),
        W_K=a.W_K.detach(),
        W_V=a.W_V.detach(),
        W_O=a.W_O.detach(),
        b_Q=a.b_Q.detach(),
        b_K=a.b_K.detach(),
        b_V=a.b_V.detach(),
        b_O=a.b_O.detach(),
        scale=1.0 / float(a.attn_scale),
    )
    if attn_only:
        return Layer(_norm(block.ln1), attn)
    return Layer(_norm(block.ln1), attn, _norm(block.ln2), _mlp(block))


def from_hooked_transformer(model) -> ModelSpec:
    """The :class:`ModelSpec` of a TransformerLens 3 ``HookedTransformer`` or a ``HookedModel``."""
    cfg = model.cfg
    check_supported(cfg)
    has_final = cfg.normalization_type is not None and hasattr(model, "ln_final")
    return ModelSpec(
        family="hooked-transformer",
        layers=tuple(_layer(b, cfg.attn_only) for b in model.blocks),
        W_E=model.W_E.detach(),
        W_U=model.W_U.detach().T,
        b_U=model.b_U.detach(),
        W_pos=model.W_pos.detach(),
        ln_final=_norm(model.ln_final) if has_final else Norm("none"),
        causal=cfg.attention_dir == "causal",
    )
