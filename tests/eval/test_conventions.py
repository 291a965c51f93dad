"""The field's conventions as pure functions: MIB's floor circuit sizes, tie handling, the three
edge-recovery AUCs on hand-made scores with hand-computed values, and the overshoot column."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eval.scoring import metrics as M


# ----- circuit sizes ------------------------------------------------------------------------------
def test_sizes_are_mibs_floor():
    # MIB: int(pct * n); with 81 edges (tracr-reverse's merged graph size) 0.1% .. 1% keep nothing
    assert [M.n_kept(f, 81) for f in M.FRACTIONS] == [0, 0, 0, 0, 1, 4, 8, 16, 40, 81]
    assert [M.n_kept(f, 32491) for f in M.FRACTIONS] == [
        32, 64, 162, 324, 649, 1624, 3249, 6498, 16245, 32491,
    ]


# ----- ties --------------------------------------------------------------------------------------
def test_a_tie_at_the_cut_is_averaged_over_every_way_to_fill_it():
    scores = np.array([5.0, 2.0, 2.0, 2.0, 2.0, 1.0])
    masks, owner = M.circuit_draws(scores, [1, 3, 5])
    # size 1 and 5 do not split the tied block: one circuit each; size 3 takes 2 of 4 tied
    assert owner.tolist() == [0] + [1] * 6 + [2]
    tied = masks[owner == 1]
    assert (tied.sum(1) == 3).all() and tied[:, 0].all() and not tied[:, 5].any()
    assert len({tuple(m) for m in tied}) == 6  # all C(4, 2) subsets: the exact expectation
    assert tied[:, 1:5].mean(0).tolist() == [0.5] * 4  # each tied edge in half of them


def test_a_large_tie_uses_64_seeded_draws():
    scores = np.r_[np.full(30, 1.0), np.zeros(10)]
    masks, owner = M.circuit_draws(scores, [15])
    assert masks.shape == (M.MAX_DRAWS, 40) and (masks.sum(1) == 15).all()
    assert not masks[:, 30:].any()
    again, _ = M.circuit_draws(scores, [15])
    assert np.array_equal(masks, again)  # seeded: the same scores give the same circuits
    assert len({tuple(m) for m in masks}) > 60  # draws, not one order repeated


def test_the_tie_no_longer_decides_the_faithfulness():
    """Old rule: ties by edge index. With a metric that needs edge 3, a tie between edges 2 and 3
    gave faithfulness 0 for the 1-edge circuit; averaged over both fillings it is 0.5."""
    scores = np.array([0.0, 0.0, 1.0, 1.0])
    old = M.circuit_masks(scores, [0.25])[0]
    assert np.flatnonzero(old).tolist() == [2]  # the index decided
    masks, owner = M.circuit_draws(scores, [1])
    f = masks[:, 3].astype(float)  # faithfulness 1 iff the circuit holds edge 3
    assert M.mean_by_owner(f, owner, 1).tolist() == [0.5]


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="outside"):
        M.circuit_draws(np.ones(3), [4])


# ----- the three AUCs ---------------------------------------------------------------------------
# positives: edges 0, 1, 3; negatives: 2, 4, 5. Threshold runs: tau=3 -> (0, 1/3),
# tau=2 -> (1/3, 2/3), tau=1 -> (1, 1).
LABELS = np.array([1, 1, 0, 1, 0, 0], dtype=bool)
SCORES = np.array([3.0, 2.0, 2.0, 1.0, 1.0, 1.0])


def test_rank_auc_counts_ties_half():
    # pairs won: edge 0 beats 3 negatives, edge 1 beats 2 and ties 1, edge 3 ties 2: 6.5 of 9
    assert M.roc_auc(LABELS, SCORES) == pytest.approx(6.5 / 9, abs=1e-12)


def test_pareto_auc_is_the_pessimistic_staircase_of_threshold_runs():
    fpr, tpr = M.threshold_points(LABELS, SCORES)
    assert fpr.tolist() == pytest.approx([0, 1 / 3, 1]) and tpr.tolist() == pytest.approx(
        [1 / 3, 2 / 3, 1]
    )
    # (1 - 0) * 1/3 + (1 - 1/3) * 1/3 + (1 - 1) * 1/3 = 5/9
    assert M.pareto_auc(LABELS, SCORES) == pytest.approx(5 / 9, abs=1e-12)
    # ACDC's own checks of pessimistic_auc (points without the ends, which we add)
    assert M.pessimistic_auc([0.25, 0.5], [0.25, 0.5]) == pytest.approx(5 / 16, abs=1e-12)
    assert M.pessimistic_auc([0.25, 0.75], [0.25, 0.5]) == pytest.approx(4 / 16, abs=1e-12)
    # a dominated point (higher FPR, lower TPR) is dropped: (1 - 0.2) * 0.5 = 0.4
    assert M.pessimistic_auc([0.2, 0.4], [0.5, 0.4]) == pytest.approx(0.4, abs=1e-12)
    assert M.pessimistic_auc([0.2], [0.5]) == pytest.approx(0.4, abs=1e-12)
    assert math.isnan(M.pareto_auc(np.ones(6, bool), SCORES))


def test_mib_auroc_is_the_trapezoid_of_the_size_points():
    # (0,0) (0,.5) (.5,1) (1,1): 0 + .5 * (.5 + 1) / 2 + .5 * 1 = 0.875
    assert M.auroc_of_points([0.5, 0.0], [1.0, 0.5]) == pytest.approx(0.875, abs=1e-12)
    assert M.auroc_of_points([], []) == pytest.approx(0.5, abs=1e-12)  # the diagonal
    assert math.isnan(M.auroc_of_points([np.nan], [0.5]))


def test_the_three_conventions_disagree_on_the_same_scores():
    masks = np.stack([SCORES >= 3, SCORES >= 2])  # circuits at every threshold
    fpr, tpr = M.rates_of_masks(LABELS, masks)
    assert fpr.tolist() == pytest.approx([0, 1 / 3]) and tpr.tolist() == pytest.approx(
        [1 / 3, 2 / 3]
    )
    # with a circuit at every threshold, the trapezoid is the rank AUC (ties interpolated)
    assert M.auroc_of_points(fpr, tpr) == pytest.approx(M.roc_auc(LABELS, SCORES), abs=1e-12)
    # MIB's sizes see only some of them: one size of 3 edges -> (0,0) (1/3,2/3) (1,1) = 2/3
    mib = M.auroc_of_points(fpr[1:], tpr[1:])
    assert mib == pytest.approx(2 / 3, abs=1e-12)
    values = [M.roc_auc(LABELS, SCORES), M.pareto_auc(LABELS, SCORES), mib]
    assert values == pytest.approx([13 / 18, 5 / 9, 2 / 3], abs=1e-12)  # three answers


# ----- overshoot ----------------------------------------------------------------------------------
def test_overshoot_is_the_area_above_one():
    x = (0.25, 0.5, 1.0)
    f = np.array([1.0, 1.4, 1.0])
    # trapezoids of max(f - 1, 0): .25 * .2 + .5 * .2 = 0.15
    assert M.overshoot(x, f) == pytest.approx(0.15, abs=1e-12)
    assert M.cpr(x, f) - M.overshoot(x, f) == pytest.approx(M.cpr(x, np.minimum(f, 1)), abs=1e-12)
    assert M.overshoot(x, [0.2, 0.9, 1.0]) == 0.0
