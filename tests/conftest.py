"""Test tiers: default (unit + interface), ``--runslow`` (slow integration and quality
regression), ``--runbench`` (pytest-benchmark speed suite)."""

from __future__ import annotations

import pytest


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
