"""The executor registry: ``--executor KEY`` looks its class up here (no if/elif)."""

from __future__ import annotations

from core.registry import Registry
from eval.executors.base import Executor

EXECUTORS: Registry[Executor] = Registry("executor", Executor)
register_executor = EXECUTORS.register


def make_executor(key: str, options) -> Executor:
    """An executor instance; importing the package registers the built-in ones."""
    import eval.executors  # noqa: F401

    return EXECUTORS.get(key)(options)
