"""Where a model comes from: :func:`resolve` turns a name into a :class:`ModelSource`.

A source says whether the model can be loaded here (:meth:`ModelSource.unavailable_reason`,
answered without a hanging network call), loads it (:meth:`ModelSource.load`) and gives its
tokenizer (None for models that take token ids). Names, in the order they are tried:

- registered names (:data:`SOURCES`, added with :func:`register_source`): the shipped models
  (``induction``, ``tracr/<program>``; :mod:`models.shipped`) and random-weight models
  (``random/<family>``, ``random/<family>-<shape>``; :mod:`models.random`); a registered name
  wins over a folder of that name;
- a local folder (an existing path, or a name that starts with ``/``, ``.`` or ``~``): a
  ``transformers`` ``save_pretrained`` folder (:mod:`models.hub`);
- a Hugging Face hub name (``org/name``, a known id such as ``gpt2``, or one in the local cache).

Anything else raises :class:`UnknownModelError` (a ``ValueError``) naming the choices. Names
under a namespace of :data:`NAMESPACES` (``random/``, ``tracr/``, ``siit/``) are never taken
for hub names. The shipped sources live in :data:`PROVIDERS`, modules imported on first need
(they import ``tasks``), so resolving a hub name or a random model doesn't.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.registry import Registry

KINDS = ("shipped", "hub", "local", "random")
# Name prefixes that belong to registered sources (never a hub organisation).
NAMESPACES = ("random", "tracr", "siit")
# Modules that register sources when imported, imported on first need (they may import tasks).
PROVIDERS = ["models.shipped"]


def _available() -> str | None:
    return None


def _no_files() -> list[Path]:
    return []


@dataclass(frozen=True)
class ModelSource:
    """One model and how to get it.

    name: what :func:`resolve` was given (a local folder: its absolute path).
    kind: ``shipped`` (weights in this repository), ``hub`` (Hugging Face hub or its cache),
        ``local`` (a folder) or ``random`` (random weights, built offline).
    description: one line for listings and messages.
    loader: ``(device, dtype) -> model``; ``dtype`` None keeps the model's own (float32 here).
    reason: why it can't be loaded here, or None.
    tokenizer_loader: ``() -> tokenizer``; None for models that take token ids.
    files: the weight (and config) files it is read from, those present locally.
    """

    name: str
    kind: str
    description: str
    loader: Callable[[str, object], object] = field(repr=False)
    reason: Callable[[], str | None] = field(default=_available, repr=False)
    tokenizer_loader: Callable[[], object] | None = field(default=None, repr=False)
    files: Callable[[], list[Path]] = field(default=_no_files, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"model source kind must be one of {KINDS}, got {self.kind!r}")

    def unavailable_reason(self) -> str | None:
        """Why the model can't be loaded here (missing weights, no hub access), or None."""
        return self.reason()

    def load(self, device: str = "cpu", dtype=None):
        """The model on ``device``, in eval mode (``dtype`` None: its own dtype)."""
        return self.loader(str(device), dtype)

    def tokenizer(self):
        """Its tokenizer, or None when the model takes token ids (shipped and random models)."""
        return None if self.tokenizer_loader is None else self.tokenizer_loader()

    def weight_files(self) -> list[Path]:
        return list(self.files())

    def digest(self) -> str | None:
        """A sha256 identifying the weights (what ``--resume`` compares), None without local
        files: a shipped model's is its weights file's sha256 (as ``core/weights_manifest.json``
        records it), others hash ``name:sha256`` of each config and weight file."""
        from core.checksum import cached_sha256

        files = self.weight_files()
        if not files:
            return None
        if self.kind == "shipped" and len(files) == 1:
            return cached_sha256(files[0])
        h = hashlib.sha256()
        for f in sorted(files):
            h.update(f"{f.name}:{cached_sha256(f)}\n".encode())
        return h.hexdigest()


class UnknownModelError(ValueError):
    """A name :func:`resolve` can't place; the message names the choices."""


SOURCES: Registry[ModelSource] = Registry("model", ModelSource)
_loaded: set[str] = set()


def register_source(name: str, factory: Callable[[], ModelSource]) -> Callable[[], ModelSource]:
    """Register ``factory`` (``() -> ModelSource`` named ``name``) under ``name``; e.g.
    ``register_source("siit/reverse/0", lambda: ModelSource(...))``. A module that registers
    sources and imports ``tasks`` belongs in :data:`PROVIDERS`."""
    return SOURCES.add(name, factory)


def _load_providers() -> None:
    for module in PROVIDERS:
        if module not in _loaded:
            importlib.import_module(module)
            _loaded.add(module)


def _registered(name: str) -> ModelSource:
    source = SOURCES.get(name)()
    if not isinstance(source, ModelSource) or source.name != name:
        raise TypeError(f"the source registered as {name!r} made {source!r}")
    return source


def names(kind: str | None = None) -> list[str]:
    """Every registered name (of ``kind``), sorted; hub names and folders are not listed."""
    _load_providers()
    return [n for n in SOURCES.keys() if kind is None or _registered(n).kind == kind]


def resolve(name: str) -> ModelSource:
    """The :class:`ModelSource` of ``name`` (see the module docstring for the order)."""
    from models import hub

    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError(f"a model name must be a non-empty string, got {name!r}")
    if name in SOURCES:
        return _registered(name)
    namespaced = "/" in name and name.split("/", 1)[0] in NAMESPACES
    if namespaced or ("/" not in name and not hub.is_known_id(name)):  # e.g. induction
        _load_providers()
        if name in SOURCES:
            return _registered(name)
    if not namespaced:
        if hub.is_path_like(name):
            return hub.local_source(name)
        if hub.is_hub_name(name):
            return hub.hub_source(name)
    raise _unknown(name)


def _unknown(name: str) -> UnknownModelError:
    choices = names()
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UnknownModelError(
        f"unknown model {name!r}.{hint} Choose one of: {', '.join(choices)}; a Hugging Face hub "
        "name (org/name, or a known id such as gpt2); or an existing local folder"
    )
