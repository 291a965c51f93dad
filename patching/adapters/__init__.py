"""Adapters that read a model's weights into a neutral :class:`ModelSpec` (one module per
source: ``tl`` for TransformerLens 3 ``HookedTransformer`` and the project's ``HookedModel``
(:mod:`patching.hooked`), ``hf`` for ``transformers`` models, ``native`` for TransformerLens 4's
native model;
a TransformerLens ``TransformerBridge`` is read through the ``transformers`` model it wraps).
Adapters only read weights: making, finding and loading models is :mod:`models`' job.
"""

from __future__ import annotations

from patching.adapters.spec import ModelSpec


def to_spec(model) -> ModelSpec:
    """The :class:`ModelSpec` of ``model``: a ``ModelSpec``, a TransformerLens
    ``HookedTransformer`` (3.x), a :class:`patching.hooked.HookedModel`, a TransformerLens
    ``TransformerBridge``, a ``transformers`` causal-LM, or a model name (loaded with
    :func:`models.resolve`)."""
    from patching.adapters import hf, tl

    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, str):
        from models import resolve

        return to_spec(resolve(model).load())
    if tl.is_hooked_transformer(model):
        return tl.from_hooked_transformer(model)
    if type(model).__name__ == "TransformerBridge":  # TransformerLens 4 (and 3.9's preview)
        return _from_bridge(model)
    if hf.is_hf_causal_lm(model):
        return hf.from_hf(model)
    raise TypeError(
        f"can't read a {type(model).__name__}: pass a patching.hooked.HookedModel, a "
        "TransformerLens HookedTransformer (3.x) or TransformerBridge, a transformers causal-LM "
        "model, a model name (models.resolve), or a ModelSpec"
    )


def _from_bridge(bridge) -> ModelSpec:
    """A ``TransformerBridge`` wraps a ``transformers`` model (or TransformerLens 4's native
    model) and keeps its weights there (also after ``enable_compatibility_mode()``, whose weight
    processing is written back into it), so the wrapped model is read."""
    from patching.adapters import hf, native

    inner = bridge.original_model
    if native.is_native(inner):
        return native.from_native(inner)
    if not hf.is_hf_causal_lm(inner):
        raise NotImplementedError(
            f"a TransformerBridge over a {type(inner).__name__} has no adapter"
        )
    return hf.from_hf(inner)


__all__ = ["ModelSpec", "to_spec"]
