"""Test tiers: default (unit + interface), ``--runslow`` (slow integration and quality
regression), ``--runbench`` (pytest-benchmark speed suite)."""

from __future__ import annotations

import pytest
import torch

# The tests run tiny models, where intra-op threads cost more than they give (and make timings
# erratic on a loaded 2-core machine).
torch.set_num_threads(1)


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")
    parser.addoption("--runbench", action="store_true", help="also run benchmark tests")


def pytest_collection_modifyitems(config, items):
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    skip_bench = pytest.mark.skip(reason="benchmark: run with --runbench")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "benchmark" in item.keywords and not config.getoption("--runbench"):
            item.add_marker(skip_bench)


@pytest.fixture
def restore_tasks():
    """File tasks registered by a test are removed after it (other tests list TASKS). Modules
    that register tasks use it: ``pytestmark = pytest.mark.usefixtures("restore_tasks")``."""
    from tasks.base import TASKS

    before = set(TASKS.keys())
    yield
    for key in set(TASKS.keys()) - before:
        TASKS.unregister(key)
