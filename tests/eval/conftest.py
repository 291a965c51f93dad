"""Fixtures of the evaluator's tests: test-only registry entries (removed afterwards) and the
builders the test modules share."""

from __future__ import annotations

import importlib
import sys

import pytest

PLUGIN = "tests.eval.tiny"


@pytest.fixture(scope="module")
def tiny():
    """Register the ``_test-*`` tasks and methods of tests/eval/tiny.py for one test module.

    Module-scoped, not session-scoped, so that registry-wide tests of other packages never see
    the test-only entries (one of them raises, another kills its process).
    """
    import methods
    import tasks

    module = importlib.import_module(PLUGIN)
    yield module
    for registry in (tasks.TASKS, methods.METHODS):
        for key in [k for k in registry.keys() if k.startswith("_test-")]:
            registry.unregister(key)
    sys.modules.pop(PLUGIN, None)


@pytest.fixture(scope="module")
def tiny_problem(tiny):
    """The tiny task's problem: 4 examples of seed 3, default graph, resample ablation."""
    from patching.graph import GraphOptions
    from tasks.problem import build_problem

    return build_problem(tiny.TinyTask(), GraphOptions(), n=4, seed=3, ablation="resample")


@pytest.fixture
def tiny_job(tiny):
    """A factory of jobs on the tiny tasks: ``tiny_job(method, task="_test-tiny", seed=0)``."""
    from eval.worker import Job

    def make(method: str, task: str = "_test-tiny", seed: int = 0) -> Job:
        return Job(method, task, seed, "resample", tiny.TinyTask.default_n, plugins=(PLUGIN,))

    return make
