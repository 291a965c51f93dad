"""Detect a user's file that hides one of this project's top-level packages.

The packages are installed under generic names (``core``, ``patching``, ``methods``, ``tasks``,
``eval``). Python puts the current folder first on ``sys.path`` for ``python -m``, so a
``tasks.py`` or ``core/`` there hides ours and the run dies later with an unrelated import error.
:func:`check_packages` finds that case first and says which file and what to do.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PACKAGES = ("core", "patching", "methods", "tasks", "eval")
ROOT = Path(__file__).resolve().parent.parent  # the folder that holds our packages


class ShadowedPackageError(ImportError):
    """A module outside this project answers to one of its package names."""


def shadowing(root: Path = ROOT, names=PACKAGES) -> list[tuple[str, str]]:
    """(package, the file that answers to its name) for each package not found in ``root``."""
    out = []
    for name in names:
        loaded = sys.modules.get(name)
        origin = getattr(loaded, "__file__", None) if loaded is not None else None
        if origin is None:
            spec = importlib.util.find_spec(name)
            origin = spec.origin if spec is not None else None
        if origin is None:
            continue
        path = Path(origin).resolve()
        if path.parent.parent != root or path.name != "__init__.py":
            out.append((name, str(path)))
    return out


def check_packages(root: Path = ROOT) -> None:
    """Raise :class:`ShadowedPackageError` naming each hiding file and the way out."""
    hidden = shadowing(root)
    if hidden:
        lines = "\n".join(f"  '{name}' is {path}" for name, path in hidden)
        raise ShadowedPackageError(
            "this project's packages are hidden by other modules of the same name:\n"
            f"{lines}\n(Python looks in the current folder first.) Run from another folder, "
            "rename those files, or use the `circuitbench` command, which does not look in the "
            "current folder."
        )
