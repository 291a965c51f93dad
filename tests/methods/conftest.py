"""Fixtures of the method tests; the builders live in ``tests/methods/problems.py``."""

from __future__ import annotations

import pytest

from tests.methods.problems import dead_head_problem, make_problem, tracr_problem


@pytest.fixture(scope="module")
def problem():
    """The tiny gpt2-like problem (float32, resample ablation)."""
    return make_problem()


@pytest.fixture(scope="module")
def dead_head():
    """A tiny float64 problem whose head a1.h2 writes nothing."""
    return dead_head_problem()


@pytest.fixture(scope="session")
def tracr():
    """``tracr(task_key, ablation, method) -> (problem, truth)``, built once per task, ablation
    and the method's graph for the whole session (compiling and converting tracr is slow)."""
    cache: dict = {}

    def build(task_key: str, ablation: str, method):
        key = (task_key, ablation, method.graph)
        if key not in cache:
            cache[key] = tracr_problem(task_key, ablation, method.graph)
        return cache[key]

    return build
