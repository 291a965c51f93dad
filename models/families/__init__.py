"""The ``transformers`` families the patched forward reads, one module each.

Each module beside this one defines ``FAMILY = Family(...)`` (:class:`models.families.base.Family`):
its ``model_type``, config class, tiny random config, published shapes and output modules.
Importing this package collects them into :data:`FAMILIES`, so adding a family here means adding
one file (and its reader in ``patching/adapters/hf.py``; README "Adding a model family").
"""

import importlib as _importlib
import pkgutil as _pkgutil

from models.families.base import COMMON, Family

FAMILIES: dict[str, Family] = {}
for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if _info.name != "base" and not _info.name.startswith("_"):
        _family = _importlib.import_module(f"models.families.{_info.name}").FAMILY
        FAMILIES[_family.name] = _family


def family(name: str) -> Family:
    """The family called ``name`` (ValueError naming the choices)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; choose one of {sorted(FAMILIES)}")
    return FAMILIES[name]


def by_model_type(model_type: str) -> Family:
    """The family whose ``transformers`` ``model_type`` is ``model_type``."""
    for f in FAMILIES.values():
        if f.model_type == model_type:
            return f
    known = sorted(f.model_type for f in FAMILIES.values())
    raise ValueError(f"no family has model_type {model_type!r}; known: {known}")


__all__ = ["COMMON", "FAMILIES", "Family", "by_model_type", "family"]
