"""``ipd``'s ranking options (methods.ipd_rank), ``ipd-classic``, and recovery by |score| for a
signed method (``Method.signed_recovery``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.scoring.evaluate import evaluate
from methods import get_method
from methods.ipd import IpdConfig, learned_masks
from methods.ipd_rank import ExitTracker, exit_scores


def test_exit_scores_order_by_exit_step_then_attribution():
    last_in = torch.tensor([9, 9, 3, -1, 3])
    attr = torch.tensor([0.1, 2.0, 5.0, 100.0, 0.0])
    order = exit_scores(last_in, attr).argsort(descending=True).tolist()
    assert order == [1, 0, 2, 4, 3]  # a later exit always wins; attribution only breaks ties


def test_exit_scores_break_early_ties_by_coefficient():
    """Edges that left together with zero attribution (a saturated model) are ordered by how far
    their coefficient got; the final circuit (last step) stays ordered by attribution."""
    last_in = torch.tensor([9, 9, 3, 3, 3])
    attr = torch.tensor([0.1, 2.0, 0.0, 0.0, 0.5])
    coef = torch.tensor([1.0, 1.0, 0.30, 0.0015, 0.0015])
    order = exit_scores(last_in, attr, coef).argsort(descending=True).tolist()
    assert order == [1, 0, 2, 4, 3]
    assert (exit_scores(last_in, attr, coef) < (last_in + 2)).all()  # never crosses a step


def test_the_exit_tracker_keeps_the_last_step_in_the_circuit():
    values = [torch.tensor([0.9, 0.9, 0.1]), torch.tensor([0.9, 0.2, 0.1])]
    tracker = ExitTracker(lambda: values[0], 3, 0.5)
    tracker(0, [], [])
    values[0] = values[1]
    tracker(1, [], [])
    assert tracker.last_in.tolist() == [1, 0, -1]


def test_learned_masks_of_l0_are_the_deterministic_gates():
    cfg = IpdConfig(penalty="l0")
    shift = cfg.beta * np.log(-cfg.gamma / cfg.zeta)
    theta = torch.tensor([-5.0, 0.0, 5.0])
    scores = torch.sigmoid(theta - shift)  # what HardConcreteGates.scores() returns
    expected = (torch.sigmoid(theta) * (cfg.zeta - cfg.gamma) + cfg.gamma).clamp(0, 1)
    torch.testing.assert_close(learned_masks(scores, cfg), expected, atol=1e-5, rtol=0)
    plain = torch.tensor([0.2, 0.7])
    assert learned_masks(plain, IpdConfig()) is plain


@pytest.mark.parametrize("bad", [dict(rank="score"), dict(threshold=0.0), dict(threshold=1.0)])
def test_rank_config_is_validated(bad):
    with pytest.raises(ValueError):
        IpdConfig(**bad)


def test_ipd_classic_is_the_coefficient_ranking_and_ipd_the_exit_ranking(problem):
    classic = get_method("ipd-classic", steps=30)
    new = get_method("ipd", steps=30)
    assert classic.config.rank == "coefficient" and new.config.rank == "pruning"
    a, b = classic(problem), new(problem)
    assert 0 <= a.min() and a.max() <= 1  # coefficients
    assert b.max() > 1  # 1 + exit step + attribution
    assert classic.trace["rank"] == "coefficient" and new.trace["in_circuit"] >= 0


def test_signed_recovery_false_ranks_recovery_by_magnitude(problem):
    n = problem.n_edges
    truth = np.zeros(n, dtype=bool)
    truth[:2] = True
    scores = np.linspace(0.5, 0.1, n)
    scores[0], scores[1] = 1.0, -2.0  # a strong negative component that is in the truth
    signed = evaluate(problem, scores, truth, signed=True)
    by_size = evaluate(problem, scores, truth, signed=True, signed_recovery=False)
    assert by_size.auc == pytest.approx(1.0) and signed.auc == pytest.approx(0.5)
    assert by_size.cpr == pytest.approx(signed.cpr)  # faithfulness keeps the signed ranking
    assert get_method("ipd-neg").signed_recovery is False
