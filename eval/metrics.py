"""Edge-recovery and faithfulness metrics: short pure functions on numpy arrays.

``labels`` is a boolean array ``[n_edges]`` (True on ground-truth edges) and ``scores`` one float
per edge, higher = more important. Edges are ranked by ``|score|`` unless ``signed`` is True
(the method declares the sign meaningful, ``Method.signed``), in which case by ``score``.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

# Circuit sizes of the faithfulness curve, as fractions of all edges (0.1% ... 100%), as in MIB.
FRACTIONS: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def ranking_scores(scores, signed: bool = False) -> np.ndarray:
    """The values edges are ranked by: ``scores`` if ``signed`` else ``|scores|`` (float64)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores must be one number per edge (1-D), got shape {s.shape}")
    if not np.isfinite(s).all():
        bad = int((~np.isfinite(s)).sum())
        raise ValueError(f"scores contain {bad} NaN or infinite values; every edge needs a number")
    return s if signed else np.abs(s)


def _labels(labels, n: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) like the scores, got {y.shape}")
    return y.astype(bool)


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < y.size


def roc_curve(labels, scores, signed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) of the edge ranking; empty when one class only."""
    r = ranking_scores(scores, signed)
    y = _labels(labels, r.size)
    if not _both_classes(y):
        return np.zeros(0), np.zeros(0)
    fpr, tpr, _ = skm.roc_curve(y, r)
    return fpr, tpr


def roc_auc(labels, scores, signed: bool = False) -> float:
    """Area under the ROC curve (ties count half); NaN when the labels have one class only."""
    r = ranking_scores(scores, signed)
    y = _labels(labels, r.size)
    return float(skm.roc_auc_score(y, r)) if _both_classes(y) else math.nan


def average_precision(labels, scores, signed: bool = False) -> float:
    """Average precision (scikit-learn's step-wise PR area); NaN without true edges."""
    r = ranking_scores(scores, signed)
    y = _labels(labels, r.size)
    return float(skm.average_precision_score(y, r)) if y.any() else math.nan


def ranking(scores, signed: bool = False) -> np.ndarray:
    """Edge indices from most to least important; ties keep edge order (a stable sort)."""
    return np.argsort(-ranking_scores(scores, signed), kind="stable")


def precision_at_k(labels, scores, signed: bool = False, k: int | None = None) -> float:
    """Fraction of ground-truth edges among the top ``k`` (default ``k = |ground truth|``)."""
    r = ranking_scores(scores, signed)
    y = _labels(labels, r.size)
    k = int(y.sum()) if k is None else k
    if k <= 0:
        return math.nan
    return float(y[ranking(r, signed=True)[:k]].mean())


def n_kept(fraction: float, n_edges: int) -> int:
    """Edges kept at ``fraction`` of ``n_edges``: rounded up, so at least one when fraction > 0."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    # the small slack stops float error (0.1 * 30 = 3.0000000000000004) from rounding up
    return min(n_edges, math.ceil(fraction * n_edges - 1e-9))


def circuit_masks(scores, fractions=FRACTIONS, signed: bool = False) -> np.ndarray:
    """Binary masks ``[len(fractions), n_edges]``: row i keeps the top ``n_kept(fractions[i])``."""
    order = ranking(scores, signed)
    masks = np.zeros((len(fractions), order.size), dtype=bool)
    for i, fraction in enumerate(fractions):
        masks[i, order[: n_kept(fraction, order.size)]] = True
    return masks


def normalised_faithfulness(m_circuit, m_clean: float, m_ablated: float) -> np.ndarray:
    """``(m(circuit) - m(ablated)) / (m(clean) - m(ablated))``: 1 = clean behaviour, 0 = ablated."""
    gap = m_clean - m_ablated
    if gap == 0 or not math.isfinite(gap):
        raise ValueError(
            f"the metric does not separate the clean ({m_clean}) from the ablated ({m_ablated}) "
            "model, so faithfulness is undefined"
        )
    return (np.asarray(m_circuit, dtype=np.float64) - m_ablated) / gap


def curve_area(fractions, values, log_x: bool = False) -> float:
    """Trapezoid area under ``values`` over the circuit sizes ``fractions``.

    Default (the MIB benchmark's ``evaluate_area_under_curve``, Mueller et al. 2025):
        area = sum_i (x_{i+1} - x_i) * (f_i + f_{i+1}) / 2,   x_i = fractions[i] in (0, 1],
    not rescaled: over the default FRACTIONS the x-range is 0.999, so f = 1 gives 0.999.
    ``log_x=True``: the same sum over x_i = log10(fractions[i]), divided by the log-range, so a
    constant curve f = c has area c and each decade of circuit size weighs the same.
    """
    x = np.asarray(fractions, dtype=np.float64)
    f = np.asarray(values, dtype=np.float64)
    if x.shape != f.shape or x.size < 2:
        raise ValueError("need matching fractions and values, at least two points")
    if np.any(np.diff(x) <= 0) or x[0] <= 0:
        raise ValueError("fractions must be positive and strictly increasing")
    if log_x:
        x = np.log10(x)
    area = float(np.sum(np.diff(x) * (f[1:] + f[:-1]) / 2))
    return area / (x[-1] - x[0]) if log_x else area


def cpr(fractions, values, log_x: bool = False) -> float:
    """Circuit performance ratio: the area under the faithfulness curve (higher is better)."""
    return curve_area(fractions, values, log_x)


def cmd(fractions, values, log_x: bool = False) -> float:
    """Circuit-model difference: the area of ``|1 - f|`` (lower is better)."""
    return curve_area(fractions, np.abs(1 - np.asarray(values, dtype=np.float64)), log_x)


def downsample(xs, ys, max_points: int = 200) -> tuple[list[float], list[float]]:
    """At most ``max_points`` of a curve, evenly spaced by index, first and last kept."""
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if xs.size > max_points:
        idx = np.unique(np.linspace(0, xs.size - 1, max_points).round().astype(int))
        xs, ys = xs[idx], ys[idx]
    return xs.tolist(), ys.tolist()
