"""Metrics on hand-made inputs whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eval.scoring import metrics as M

LABELS = np.array([1, 0, 1, 0], dtype=bool)
SCORES = np.array([0.9, 0.8, 0.7, 0.1])


def test_roc_auc_counts_correctly_ordered_pairs():
    # positive/negative pairs: (0.9, 0.8) (0.9, 0.1) (0.7, 0.1) right, (0.7, 0.8) wrong -> 3/4
    assert M.roc_auc(LABELS, SCORES) == pytest.approx(0.75, abs=1e-12)
    assert M.roc_auc(LABELS, [4, 1, 3, 2]) == pytest.approx(1.0, abs=1e-12)
    assert M.roc_auc(LABELS, [1, 4, 2, 3]) == pytest.approx(0.0, abs=1e-12)
    assert M.roc_auc(LABELS, [1, 1, 1, 1]) == pytest.approx(0.5, abs=1e-12)  # ties count half


def test_roc_curve_points():
    fpr, tpr = M.roc_curve(LABELS, SCORES)
    # thresholds 0.9 (1 TP), 0.8 (1 FP), 0.7 (2 TP), 0.1 (2 FP); sklearn adds the (0, 0) start
    pts = set(zip(fpr.round(6), tpr.round(6), strict=True))
    assert {(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)} <= pts
    assert fpr[0] == 0 and tpr[-1] == 1 and np.all(np.diff(fpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(M.roc_auc(LABELS, SCORES), abs=1e-12)


def test_average_precision_known():
    # ranking 1,0,1,0: precision 1 at the first hit, 2/3 at the second -> (1 + 2/3) / 2
    assert M.average_precision(LABELS, SCORES) == pytest.approx(5 / 6, abs=1e-12)
    assert M.average_precision(LABELS, [4, 1, 3, 2]) == pytest.approx(1.0, abs=1e-12)


def test_precision_at_k_defaults_to_ground_truth_size():
    assert M.precision_at_k(LABELS, SCORES) == pytest.approx(0.5, abs=1e-12)  # k = 2: 0.9, 0.8
    assert M.precision_at_k(LABELS, SCORES, k=1) == 1.0
    assert M.precision_at_k(LABELS, SCORES, k=3) == pytest.approx(2 / 3, abs=1e-12)
    assert math.isnan(M.precision_at_k(np.zeros(4, bool), SCORES))


def test_signed_ranking_differs_from_absolute():
    labels = np.array([1, 0, 0, 0], dtype=bool)
    scores = np.array([-5.0, 1.0, 2.0, -3.0])
    assert M.roc_auc(labels, scores) == pytest.approx(1.0, abs=1e-12)  # |-5| is the largest
    assert M.roc_auc(labels, scores, signed=True) == pytest.approx(0.0, abs=1e-12)
    assert M.precision_at_k(labels, scores) == 1.0
    assert M.precision_at_k(labels, scores, signed=True) == 0.0
    assert M.circuit_masks(scores, [0.25])[0].tolist() == [True, False, False, False]
    assert M.circuit_masks(scores, [0.25], signed=True)[0].tolist() == [False, False, True, False]


def test_degenerate_labels_and_bad_scores():
    assert math.isnan(M.roc_auc(np.ones(4, bool), SCORES))
    assert math.isnan(M.roc_auc(np.zeros(4, bool), SCORES))
    assert math.isnan(M.average_precision(np.zeros(4, bool), SCORES))
    assert M.roc_curve(np.ones(4, bool), SCORES)[0].size == 0
    with pytest.raises(ValueError, match="NaN"):
        M.roc_auc(LABELS, [0.1, np.nan, 0.2, 0.3])
    with pytest.raises(ValueError, match="shape"):
        M.roc_auc(LABELS[:3], SCORES)


def test_n_kept_is_mibs_floor():
    assert [M.n_kept(f, 1000) for f in M.FRACTIONS] == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    assert [M.n_kept(f, 7) for f in M.FRACTIONS] == [0, 0, 0, 0, 0, 0, 0, 1, 3, 7]
    assert M.n_kept(0.1, 30) == 3  # 0.1 * 30 = 3.0000000000000004
    assert M.n_kept(0.29, 100) == 29  # 0.29 * 100 = 28.999999999999996 must not round down
    assert M.n_kept(0.0, 30) == 0
    with pytest.raises(ValueError):
        M.n_kept(1.5, 10)


def test_circuit_masks_are_nested_top_k():
    scores = np.array([0.3, -0.9, 0.1, 0.5, 0.0, 0.7, 0.2, -0.4, 0.6, 0.05])
    masks = M.circuit_masks(scores, [0.1, 0.2, 0.5, 1.0])
    assert masks.sum(1).tolist() == [1, 2, 5, 10]
    assert np.flatnonzero(masks[0]).tolist() == [1]  # |-0.9|
    assert np.flatnonzero(masks[1]).tolist() == [1, 5]
    assert np.all(masks[:-1] <= masks[1:])  # each circuit contains the smaller ones


def test_normalised_faithfulness():
    f = M.normalised_faithfulness([1.0, 2.0, 3.0, 4.0], m_clean=3.0, m_ablated=1.0)
    assert f.tolist() == [0.0, 0.5, 1.0, 1.5]
    with pytest.raises(ValueError, match="does not separate"):
        M.normalised_faithfulness([1.0], m_clean=2.0, m_ablated=2.0)


def test_cpr_and_cmd_of_known_curves():
    x = M.FRACTIONS
    ones, zeros = np.ones(len(x)), np.zeros(len(x))
    # linear (MIB) areas: the x-range is 1 - 0.001
    assert M.cpr(x, ones) == pytest.approx(0.999, abs=1e-12)
    assert M.cmd(x, ones) == pytest.approx(0.0, abs=1e-12)
    assert M.cpr(x, zeros) == pytest.approx(0.0, abs=1e-12)
    assert M.cmd(x, zeros) == pytest.approx(0.999, abs=1e-12)
    # f = x is linear, so the trapezoids are exact: (1 - 0.001^2) / 2
    assert M.cpr(x, np.array(x)) == pytest.approx((1 - 1e-6) / 2, abs=1e-12)
    # an overshoot counts in CMD as much as a shortfall
    assert M.cmd(x, 2 * ones) == pytest.approx(0.999, abs=1e-12)
    # log-x areas are normalised: a constant c has area c; f = log10(x) + 3 averages 1.5
    assert M.cpr(x, 0.7 * ones, log_x=True) == pytest.approx(0.7, abs=1e-12)
    assert M.cpr(x, np.log10(x) + 3, log_x=True) == pytest.approx(1.5, abs=1e-12)
    assert M.cmd(x, ones, log_x=True) == pytest.approx(0.0, abs=1e-12)


def test_curve_area_validates():
    with pytest.raises(ValueError):
        M.curve_area([0.1, 0.05], [1, 1])
    with pytest.raises(ValueError):
        M.curve_area([0.1], [1])


def test_downsample_keeps_ends_and_bounds_points():
    xs, ys = np.linspace(0, 1, 1001), np.linspace(0, 1, 1001) ** 2
    dx, dy = M.downsample(xs, ys, 200)
    assert len(dx) <= 200 and dx[0] == 0 and dx[-1] == 1 and dy[-1] == 1
    assert M.downsample([0, 1], [0, 1]) == ([0.0, 1.0], [0.0, 1.0])
