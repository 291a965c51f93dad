"""Fixtures of the evaluator's tests: test-only registry entries that are removed afterwards."""

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
