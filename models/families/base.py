"""What a model family file declares: :class:`Family`.

One module per ``transformers`` family in this folder defines ``FAMILY = Family(...)``;
:mod:`models.families` collects them. Reading a family's weights into the patched forward's
``ModelSpec`` is the adapter's job (``patching/adapters/hf.py``, keyed by ``model_type``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Config fields every tiny random model shares (a small vocabulary and context, untied weights).
COMMON = dict(vocab_size=50, max_position_embeddings=64, tie_word_embeddings=False)


def decoder_layers_output_modules(model) -> list:
    """``(attention, mlp)`` modules of each ``model.model.layers`` block (Llama-style layout):
    the modules whose outputs are the block's attention and MLP contributions."""
    return [(b.self_attn, b.mlp) for b in model.model.layers]


@dataclass(frozen=True)
class Family:
    """A ``transformers`` family the patched forward reads.

    name: short name (``random/<name>``, ``python -m patching.verify --family <name>``).
    model_type: ``config.model_type``; the adapter's reader is ``patching.adapters.hf.FAMILIES``
        under this key.
    config_class: the ``transformers`` config class (by name: transformers is imported lazily).
    tiny: config fields of the tiny random model (over :data:`COMMON`): few layers and heads,
        and every feature of the family switched on and set small (windows, soft-caps), so a test
        on it can fail.
    description: one line, what the patched forward reproduces.
    shapes: published shapes as full config fields, built as ``random/<name>-<shape>``.
    norm_one_plus: norm weights are stored as ``w`` for a ``(1 + w)`` scale (Gemma); the tiny
        model's norms are drawn around 1 either way.
    output_modules: ``model -> [(attention_module, mlp_module)]`` per layer, the modules whose
        outputs are the contributions to the residual stream (what ``patching.verify`` replaces
        through forward hooks).
    """

    name: str
    model_type: str
    config_class: str
    tiny: dict
    description: str
    shapes: dict[str, dict] = field(default_factory=dict)
    norm_one_plus: bool = False
    output_modules: Callable[[object], list] = decoder_layers_output_modules

    def config(self, shape: str | None = None, **overrides):
        """The ``transformers`` config of the tiny model (``shape`` None) or of a published
        shape, with ``overrides`` applied; eager attention."""
        import transformers

        if shape is None:
            fields = {**COMMON, **self.tiny}
        elif shape in self.shapes:
            fields = dict(self.shapes[shape])
        else:
            raise ValueError(
                f"family {self.name!r} has no shape {shape!r}; shapes: {sorted(self.shapes)}"
            )
        cfg = getattr(transformers, self.config_class)(**{**fields, **overrides})
        cfg._attn_implementation = "eager"
        return cfg
