"""Checks the runner makes before any work starts (exit 2, nothing written).

D5: ``--n`` above a task's train examples (``max_train()``); D6: ``--write-baseline`` /
``eval.speed --out`` to a path that can't be written; D7: a ``--plugin`` that raises anything
while importing. (D3, the baseline file, is checked by :func:`eval.baseline.load_baseline`.)
"""

from __future__ import annotations

import importlib
import os
import traceback
from pathlib import Path


class UsageError(ValueError):
    """Bad command-line input: reported with exit code 2 before anything runs."""


def load_plugins(plugins) -> None:
    """Import each ``--plugin`` module; whatever it raises is a usage error naming it (D7)."""
    for name in plugins:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            raise UsageError(f"--plugin {name}: {exc}") from None
        except (Exception, SystemExit) as exc:  # SyntaxError, a duplicate registration, ...
            where = ""
            tb = traceback.extract_tb(exc.__traceback__)
            if isinstance(exc, SyntaxError) and exc.filename:
                where = f" ({exc.filename}, line {exc.lineno})"
            elif tb:
                where = f" ({tb[-1].filename}, line {tb[-1].lineno})"
            raise UsageError(
                f"--plugin {name} failed to import: {type(exc).__name__}: {exc}{where}"
            ) from None


def check_n(task_keys, ns: dict[str, int], limits: dict[str, int]) -> None:
    """Each task's train examples per run within what the task gives (D5): ``limits`` holds
    each task's ``max_train()``, the examples not held out (tasks.splits)."""
    for key in task_keys:
        if ns[key] > limits[key]:
            raise UsageError(
                f"--n {ns[key]}: task {key!r} gives at most {limits[key]} train examples"
            )


def check_writable_file(path: str | Path, flag: str) -> None:
    """``path`` can be created or replaced (its nearest existing folder writable) (D6).

    Writes nothing: the folders a later write would create are not created here.
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path} is not writable")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: folder {parent} is not writable")
