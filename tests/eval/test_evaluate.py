"""Batched faithfulness evaluation agrees with one forward per circuit; its ends are exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eval.scoring import metrics
from eval.scoring.evaluate import evaluate, masks_per_chunk, metric_of_masks


@pytest.fixture(scope="module")
def problem(tiny_problem):
    return tiny_problem


def test_batched_equals_one_forward_per_mask(problem):
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(7, problem.n_edges, generator=g) > 0.5
    batched = metric_of_masks(problem, masks)
    with torch.no_grad():
        one_by_one = torch.stack([problem.metric_of(m.float()) for m in masks])
    torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=1e-5)
    # a budget too small for two masks gives one mask per forward, with the same answer
    assert masks_per_chunk(problem, budget_bytes=1) == 1
    torch.testing.assert_close(metric_of_masks(problem, masks, budget_bytes=1), batched)


def test_faithfulness_ends_and_edge_recovery(problem):
    scores = np.random.default_rng(0).normal(size=problem.n_edges)
    truth = np.zeros(problem.n_edges, bool)
    truth[np.argsort(-np.abs(scores))[:5]] = True  # the top 5 by |score|: a perfect ranking
    ev = evaluate(problem, scores, truth)
    assert ev.auc == 1.0 and ev.ap == 1.0 and ev.precision_at_k == 1.0
    assert ev.n_kept == [metrics.n_kept(f, problem.n_edges) for f in metrics.FRACTIONS]
    assert ev.n_kept[-1] == problem.n_edges and ev.n_kept[0] == 0  # floor(0.001 * 61)
    assert all(g <= k for g, k in zip(ev.n_in_graph, ev.n_kept, strict=True))  # pruning
    assert ev.faithfulness[0] == pytest.approx(0.0, abs=1e-5)  # no edges: the ablated model
    assert ev.faithfulness[-1] == pytest.approx(1.0, abs=1e-5)  # all edges kept: the clean model
    assert ev.cpr == pytest.approx(metrics.cpr(ev.fractions, ev.faithfulness), abs=1e-12)
    # unsigned: CPR's and CMD's rankings are the same
    assert ev.faithfulness_abs == ev.faithfulness
    assert ev.cmd_log == pytest.approx(metrics.cmd(ev.fractions, ev.faithfulness, True), abs=1e-12)
    assert math.isnan(ev.auc_pareto)  # not threshold-swept
    assert ev.fpr[0] == 0 and ev.tpr[-1] == 1
    # the sign of the same scores ranks differently when declared meaningful
    assert evaluate(problem, scores, truth, signed=True).auc < 1.0
