"""Where models come from: one name -> a :class:`ModelSource` that says whether the model can be
loaded here, loads it and gives its tokenizer.

    from models import resolve
    model = resolve("tracr/reverse").load("cpu")      # shipped: tracr programs, induction
    resolve("Qwen/Qwen2.5-0.5B").unavailable_reason()  # hub names, answered without hanging
    resolve("./my-model").load()                       # a save_pretrained folder
    resolve("random/llama").load()                     # tiny random models of each family

Modules: :mod:`models.source` (:func:`resolve`, the registry), :mod:`models.shipped` (tracr
programs, induction), :mod:`models.hub` (hub names, local folders), :mod:`models.random`
(random weights), :mod:`models.tracr` (compiling and converting tracr programs),
:mod:`models.families` (one file per ``transformers`` family). Reading a model into the patched
forward is ``patching.adapters``' job; nothing here does.
"""

from models import random as _random  # noqa: F401  (registers the random/ sources)
from models.source import (
    SOURCES,
    ModelSource,
    UnknownModelError,
    names,
    register_source,
    resolve,
)

__all__ = ["SOURCES", "ModelSource", "UnknownModelError", "names", "register_source", "resolve"]
