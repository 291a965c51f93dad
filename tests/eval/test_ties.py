"""Float residue is a tie (eval.scoring.metrics.Ties): a ranking measure gives the same value on any
machine, thread count and dtype. eap on tracr-reverse/zero is the case that failed on one kind of
machine: 65 of its 77 scores are exactly 0 and four more are residue (9e-13 of the largest score
in float32, 3e-21 in float64), which decided the AUC (0.9955 on one host, 0.9448 on another).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.scoring import metrics
from eval.scoring.evaluate import evaluate
from methods import get_method
from patching import PatchableModel
from tasks import get_task
from tasks.problem import Problem


def test_residue_around_zero_is_tied_with_zero():
    labels = np.array([True, True, False, False, False])
    exact = np.array([1.0, 0.0, 0.0, 0.0, 0.5])
    residue = exact + np.array([0, 9e-13, 0, 1.4e-18, 0])
    flipped = exact + np.array([0, 0, 5.4e-20, 0, 0])
    values = {metrics.roc_auc(labels, s) for s in (exact, residue, flipped)}
    assert len(values) == 1
    assert metrics.average_precision(labels, residue) == metrics.average_precision(labels, exact)
    draws = [metrics.circuit_draws(s, [2])[0].mean(0) for s in (exact, residue, flipped)]
    assert all(np.array_equal(draws[0], d) for d in draws)


def test_differences_above_the_tolerance_still_order():
    labels = np.array([True, False])
    rtol = metrics.TIE_RTOL["float32"]
    assert metrics.roc_auc(labels, [1.0, 1.0 - 4 * rtol]) == 1.0  # a real difference
    assert metrics.roc_auc(labels, [1.0, 1.0 - rtol / 8]) == 0.5  # below precision: a tie


def test_grid_does_not_chain_a_dense_run_into_one_tie():
    scores = np.linspace(0, 1, 10_001)  # neighbours 1e-4 apart, above the 6.1e-5 tolerance
    assert np.unique(metrics.ranking_scores(scores)).size == scores.size


def test_floor_ties_a_ranking_made_only_of_residue():
    """Every score residue (a gradient that is exactly 0 at the clean input): with the task
    metric's gap as the floor, it is one tie, not an order."""
    labels = np.array([True, False, False])
    residue = np.array([2.9e-9, 0.0, 1e-12])
    assert metrics.roc_auc(labels, residue) == 1.0  # relative to its own max, an order
    assert metrics.roc_auc(labels, residue, ties=metrics.Ties("float32", 0.16)) == 0.5


def test_float64_scores_use_float32_tolerance_and_16_bit_its_own():
    assert metrics.Ties(torch.float64).rtol == metrics.Ties("float32").rtol
    assert metrics.Ties(torch.bfloat16).rtol > metrics.Ties(torch.float16).rtol
    with pytest.raises(ValueError, match="no tie tolerance"):
        _ = metrics.Ties("int8").rtol


# Measured 2026-12-07 (AMD EPYC, torch 2.13.0+cpu): 0.3937619 in float32, 0.3937619 in float64
# (they differ by 4.5e-8, the metric's float32 rounding, well inside the 1e-6 the test allows).
EAP_REVERSE_ZERO_CPR = 0.3937619


@pytest.fixture(scope="module")
def reverse():
    task = get_task("tracr-reverse")
    return task, task.all_data()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_eap_on_tracr_reverse_zero_is_dtype_and_thread_invariant(reverse, dtype, threads):
    """The same AUC (exactly) and CPR (to float rounding of the metric, 1e-6) in float32 and
    float64 under 1 and 2 threads. AUC 0.600: eap's gradient is exactly 0 on most edges of this
    saturated model, so most of its ranking is one tie; the residue used to decide it."""
    task, data = reverse
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        method = get_method("eap")
        pm = PatchableModel(task.load_model().to(dtype), method.graph.config(data.clean.shape[1]))
        problem = Problem.from_task(task, pm, data, "zero")
        truth = pm.graph.edge_mask(task.ground_truth(pm.graph, "zero")).numpy().astype(bool)
        result = evaluate(problem, method(problem).numpy(), truth, signed=method.signed)
    finally:
        torch.set_num_threads(before)
    assert result.auc == pytest.approx(0.6, abs=1e-12)
    assert result.cpr == pytest.approx(EAP_REVERSE_ZERO_CPR, abs=1e-6)
