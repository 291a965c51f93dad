"""Executors of the runner's jobs: ``local`` (a process per job, default), ``pool`` (the same,
``--workers`` at a time), ``inline`` (in the runner's process) and ``ray`` (a Ray task per job,
on a local or existing cluster)."""

from eval.executors import inline, local, pool, ray  # noqa: F401  (register)
from eval.executors.base import ExecOptions, Executor
from eval.executors.registry import EXECUTORS, make_executor, register_executor

__all__ = ["EXECUTORS", "ExecOptions", "Executor", "make_executor", "register_executor"]
