"""pytest-benchmark suite (opt in: ``pytest --runbench tests/benchmarks``).

One interpolated-patch step (patched forward + backward into all 32,491 masks) against a plain
TransformerLens forward + backward, on the GPT-2-small-shaped random model of ``eval.speed``
(batch 8 x 16 tokens, float32). Compare the groups' means; ``python -m eval.speed`` measures the
same steps with each variant's peak memory in a process of its own and writes
results/speed.json.
"""

from __future__ import annotations

import pytest
import torch

from eval.speed.step import step_fn

pytestmark = pytest.mark.benchmark


@pytest.fixture(autouse=True)
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("variant", ["plain", "ipd", "ipd_full_logits"])
def test_step(benchmark, variant):
    benchmark.group = "gpt2-small-shaped step, batch 8 x 16"
    step = step_fn(variant, "cpu")
    step()  # warm-up
    benchmark.pedantic(step, rounds=3, iterations=1)


def test_layerwise_step(benchmark):
    benchmark.group = "gpt2-small-shaped step, batch 8 x 16"
    step = step_fn("layerwise", "cpu")
    benchmark.pedantic(step, rounds=1, iterations=1)
