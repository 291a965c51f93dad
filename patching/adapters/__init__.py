"""Adapters that read a model's weights into a neutral :class:`ModelSpec` (one module per
source: ``tl`` for TransformerLens ``HookedTransformer``, ``hf`` for ``transformers`` models).
"""

from __future__ import annotations

from patching.adapters.spec import ModelSpec


def to_spec(model) -> ModelSpec:
    """The :class:`ModelSpec` of ``model``: a ``ModelSpec``, a TransformerLens
    ``HookedTransformer``, a ``transformers`` causal-LM, or a hub name / local path (loaded with
    ``transformers``)."""
    from patching.adapters import hf, tl

    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, str):
        return hf.from_hf(hf.load(model))
    if tl.is_hooked_transformer(model):
        return tl.from_hooked_transformer(model)
    if hf.is_hf_causal_lm(model):
        return hf.from_hf(model)
    raise TypeError(
        f"can't read a {type(model).__name__}: pass a TransformerLens HookedTransformer, a "
        "transformers causal-LM model (or its hub name / local path), or a ModelSpec"
    )


__all__ = ["ModelSpec", "to_spec"]
