"""Edge-recovery and faithfulness metrics: short pure functions on numpy arrays.

``labels`` is a boolean array ``[n_edges]`` (True on ground-truth edges) and ``scores`` one float
per edge, higher = more important. Edges are ranked by ``|score|`` unless ``signed`` is True
(the method declares the sign meaningful, ``Method.signed``), in which case by ``score``.

Conventions (docs/conventions.md): MIB's circuit sizes (:func:`n_kept`, floor), ties that
never decide (:func:`circuit_draws`), three edge-recovery areas side by side: :func:`roc_auc`
(rank AUC over all edges), :func:`pareto_auc` (the ACDC paper's pessimistic Pareto staircase
over threshold runs) and :func:`auroc_of_points` (MIB's AUROC over its 10 circuit sizes); and
:func:`overshoot`, the part of CPR above faithfulness 1.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

# Circuit sizes of the faithfulness curve, as fractions of all edges (0.1% ... 100%), as in MIB.
FRACTIONS: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


# Ties below float precision (docs/conventions.md, "Float residue is a tie"). Two scores whose
# difference is below ``rtol * scale`` are no order: another machine's kernels, thread count or
# dtype can flip them. ``scale`` is max|score|, floored by the task metric's clean-ablated gap
# when the evaluator knows it (a method whose every score is residue, e.g. a gradient that is
# exactly 0 at the clean input, must not be ranked by that residue). ``rtol`` is the compute
# dtype's (below) unless the task declares its own (``Task.tie_rtol``: compiled tracr models,
# 2**-14, measured there).
# Default 2**-20 (9.5e-7, 8 float32 ulps at the largest score): it ties the residue measured on
# eap (1e-12 of the largest score in float32 where float64 has 3e-21 or exact 0) and keeps the
# order of a real model's dense small scores: on MIB's published EAP-IG scores for IOI on GPT-2
# small (32,491 edges) the AUC moves by 2e-5 (0.87046 -> 0.87048), where 2**-14 would tie 74% of
# the edges and move it by 0.0025 (scripts/tie_tolerance.py measures both). Scores computed in
# float64 use float32's tolerance (never a finer one), so a method ranks alike in both dtypes;
# 16-bit dtypes use 8 ulps of their own.
TIE_RTOL: dict[str, float] = {
    "float64": 2.0**-20,
    "float32": 2.0**-20,
    "float16": 2.0**-7,
    "bfloat16": 2.0**-4,
}


@dataclass(frozen=True)
class Ties:
    """When two scores are a tie: ``dtype`` the scores were computed in (a torch or numpy dtype
    or its name), ``scale`` an absolute floor under max|score| (the evaluator passes the task
    metric's |clean - ablated| gap), ``task_rtol`` a task's own tolerance (replaces the dtype's).
    The default, float32 and no floor, suits stored scores."""

    dtype: object = "float32"
    scale: float = 0.0
    task_rtol: float | None = None

    @property
    def rtol(self) -> float:
        if self.task_rtol is not None:
            return self.task_rtol
        name = str(self.dtype).removeprefix("torch.")
        if name not in TIE_RTOL:
            raise ValueError(
                f"no tie tolerance for dtype {self.dtype!r}; known: {sorted(TIE_RTOL)}"
            )
        return TIE_RTOL[name]

    def snap(self, values: np.ndarray) -> np.ndarray:
        """``values`` rounded to a grid whose step is the largest power of two <= ``rtol *
        max(max|v|, scale)``: values closer than the step become equal, 0 stays 0 and residue
        around it joins it. A power-of-two step moves only when the scale crosses a power of two,
        so the grid does not shift with the float noise of the largest score; a grid, not
        chaining, so a dense run of small scores is not merged into one block."""
        top = max(float(np.max(np.abs(values))) if values.size else 0.0, abs(self.scale))
        if top == 0.0 or not math.isfinite(top) or self.rtol <= 0:
            return values
        step = 2.0 ** math.floor(math.log2(self.rtol * top))
        return np.round(values / step) * step


TIES = Ties()


def ranking_scores(scores, signed: bool = False, ties: Ties = TIES) -> np.ndarray:
    """The values edges are ranked by: ``scores`` if ``signed`` else ``|scores|`` (float64),
    with differences below float precision made ties (:meth:`Ties.snap`)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores must be one number per edge (1-D), got shape {s.shape}")
    if not np.isfinite(s).all():
        bad = int((~np.isfinite(s)).sum())
        raise ValueError(f"scores contain {bad} NaN or infinite values; every edge needs a number")
    return ties.snap(s if signed else np.abs(s))


def _labels(labels, n: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) like the scores, got {y.shape}")
    return y.astype(bool)


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < y.size


def roc_curve(
    labels, scores, signed: bool = False, ties: Ties = TIES
) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) of the edge ranking; empty when one class only."""
    r = ranking_scores(scores, signed, ties)
    y = _labels(labels, r.size)
    if not _both_classes(y):
        return np.zeros(0), np.zeros(0)
    fpr, tpr, _ = skm.roc_curve(y, r)
    return fpr, tpr


def roc_auc(labels, scores, signed: bool = False, ties: Ties = TIES) -> float:
    """Area under the ROC curve (ties count half); NaN when the labels have one class only."""
    r = ranking_scores(scores, signed, ties)
    y = _labels(labels, r.size)
    return float(skm.roc_auc_score(y, r)) if _both_classes(y) else math.nan


def average_precision(labels, scores, signed: bool = False, ties: Ties = TIES) -> float:
    """Average precision (scikit-learn's step-wise PR area); NaN without true edges."""
    r = ranking_scores(scores, signed, ties)
    y = _labels(labels, r.size)
    return float(skm.average_precision_score(y, r)) if y.any() else math.nan


def ranking(scores, signed: bool = False, ties: Ties = TIES) -> np.ndarray:
    """Edge indices from most to least important; ties keep edge order (a stable sort)."""
    return np.argsort(-ranking_scores(scores, signed, ties), kind="stable")


def precision_at_k(
    labels, scores, signed: bool = False, k: int | None = None, ties: Ties = TIES
) -> float:
    """Fraction of ground-truth edges among the top ``k`` (default ``k = |ground truth|``)."""
    r = ranking_scores(scores, signed, ties)
    y = _labels(labels, r.size)
    k = int(y.sum()) if k is None else k
    if k <= 0:
        return math.nan
    return float(y[np.argsort(-r, kind="stable")[:k]].mean())


def n_kept(fraction: float, n_edges: int) -> int:
    """Edges kept at ``fraction`` of ``n_edges``: ``floor(fraction * n_edges)``, as MIB's
    ``evaluate_area_under_curve`` (``int(pct * n_scored_items)``, Mueller et al. 2025); so small
    fractions of a small graph keep 0 edges (81 edges: 0.1% to 1% keep none)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    # the small slack stops float error (0.29 * 100 = 28.999999999999996) from rounding down
    return min(n_edges, math.floor(fraction * n_edges + 1e-9))


def circuit_masks(
    scores, fractions=FRACTIONS, signed: bool = False, ties: Ties = TIES
) -> np.ndarray:
    """Binary masks ``[len(fractions), n_edges]``: row i keeps the top ``n_kept(fractions[i])``,
    ties broken by edge index (one representative; the evaluator uses :func:`circuit_draws`)."""
    order = ranking(scores, signed, ties)
    masks = np.zeros((len(fractions), order.size), dtype=bool)
    for i, fraction in enumerate(fractions):
        masks[i, order[: n_kept(fraction, order.size)]] = True
    return masks


MAX_DRAWS = 64  # tie orders evaluated per circuit size at most
TIE_SEED = 0  # fixed, so the same scores always give the same circuits


def circuit_draws(
    scores,
    sizes,
    signed: bool = False,
    max_draws: int = MAX_DRAWS,
    seed: int = TIE_SEED,
    ties: Ties = TIES,
) -> tuple[np.ndarray, np.ndarray]:
    """The circuits of each size in ``sizes`` (edge counts) with ties that never decide.

    Edges strictly above the cut's score are in, those below out. When the cut falls inside a
    block of ``t`` equal scores of which ``m`` fit (0 < m < t), every choice of ``m`` of the block
    is equally justified: if there are at most ``max_draws`` such subsets, all are returned (the
    mean over them is the exact expectation over random tie orders); otherwise ``max_draws``
    subsets drawn uniformly with a generator seeded by ``seed``. Returns ``masks [M, n_edges]``
    and ``owner [M]``, the index into ``sizes`` each mask belongs to; a size without a
    straddling tie has exactly one mask.
    """
    r = ranking_scores(scores, signed, ties)
    order = np.argsort(-r, kind="stable")
    ranked = r[order]
    rng = np.random.default_rng(seed)
    masks, owner = [], []
    for i, k in enumerate(sizes):
        k = int(k)
        if not 0 <= k <= r.size:
            raise ValueError(f"circuit size {k} is outside [0, {r.size}]")
        base = np.zeros(r.size, dtype=bool)
        if k == 0 or k == r.size or ranked[k - 1] != ranked[k]:
            base[order[:k]] = True
            masks.append(base)
            owner.append(i)
            continue
        cut = ranked[k - 1]
        base[r > cut] = True
        tied = np.flatnonzero(r == cut)
        m = k - int(base.sum())
        if math.comb(tied.size, m) <= max_draws:
            choices = [np.array(c) for c in itertools.combinations(tied, m)]
        else:
            choices = [rng.choice(tied, size=m, replace=False) for _ in range(max_draws)]
        for chosen in choices:
            mask = base.copy()
            mask[chosen] = True
            masks.append(mask)
            owner.append(i)
    return np.stack(masks), np.asarray(owner, dtype=np.int64)


def mean_by_owner(values, owner, n_owners: int) -> np.ndarray:
    """Mean of ``values`` over the masks of each owner (``owner`` from :func:`circuit_draws`)."""
    v = np.asarray(values, dtype=np.float64)
    total = np.bincount(owner, weights=v, minlength=n_owners)
    count = np.bincount(owner, minlength=n_owners)
    return total / count


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


def overshoot(fractions, values, log_x: bool = False) -> float:
    """Area of ``max(f - 1, 0)``: how much of the CPR comes from circuits that do *better* than the
    clean model on the metric (0 when the curve never exceeds 1). A metric that ablation can
    raise (a mean log-probability, say) lets CPR pass 1 this way; ``cpr - overshoot`` is the
    area of ``min(f, 1)``."""
    over = np.clip(np.asarray(values, dtype=np.float64) - 1, 0, None)
    return curve_area(fractions, over, log_x)


def rates_of_masks(labels, masks) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) of each circuit in ``masks [k, n_edges]``."""
    kept = np.asarray(masks, dtype=bool)
    y = _labels(labels, kept.shape[-1])
    if not _both_classes(y):
        nan = np.full(kept.shape[0], np.nan)
        return nan, nan
    tpr = (kept & y).sum(-1) / y.sum()
    fpr = (kept & ~y).sum(-1) / (~y).sum()
    return fpr.astype(np.float64), tpr.astype(np.float64)


def auroc_of_points(fpr, tpr) -> float:
    """Trapezoid area under ROC points of a few circuits, with (0, 0) and (1, 1) added and the
    points sorted by FPR (then TPR): MIB's InterpBench AUROC over its 10 circuit sizes
    (``area_under_roc`` in MIB-circuit-track's ``evaluation.py`` gives the points). NaN if any
    point is NaN (labels of one class)."""
    x, y = np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError("fpr and tpr must have the same shape")
    if np.isnan(x).any() or np.isnan(y).any():
        return math.nan
    x, y = np.concatenate([[0.0], x, [1.0]]), np.concatenate([[0.0], y, [1.0]])
    i = np.lexsort((y, x))
    x, y = x[i], y[i]
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def threshold_points(
    labels, scores, signed: bool = False, ties: Ties = TIES
) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) of the circuit ``score >= tau`` for every distinct score ``tau``: one point per
    threshold run of a threshold-swept method (ACDC, ipd-sweep), nothing inside a tied block."""
    r = ranking_scores(scores, signed, ties)
    y = _labels(labels, r.size)
    if not _both_classes(y):
        return np.zeros(0), np.zeros(0)
    taus = np.unique(r)[::-1]
    kept = r[None, :] >= taus[:, None]
    return rates_of_masks(y, kept)


def pareto_front(fpr, tpr) -> tuple[np.ndarray, np.ndarray]:
    """The points no other point beats (FPR <= and TPR >=, one strictly), sorted by FPR."""
    x, y = np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)
    i = np.lexsort((-y, x))  # by FPR ascending, then TPR descending
    x, y = x[i], y[i]
    keep, best = [], -np.inf
    for j in range(x.size):
        if y[j] > best:  # strictly higher TPR than every point at lower or equal FPR
            keep.append(j)
            best = y[j]
    return x[keep], y[keep]


def pessimistic_auc(fpr, tpr) -> float:
    """The ACDC paper's area (Conmy et al. 2023, ``pessimistic_auc`` in its code): the Pareto
    points of the threshold runs with (0, 0) and (1, 1) added, joined by a staircase that reaches
    each point's TPR only at its FPR: ``sum_i (1 - x_i) * (y_i - y_{i-1})``."""
    x = np.concatenate([[0.0], np.asarray(fpr, dtype=np.float64), [1.0]])
    y = np.concatenate([[0.0], np.asarray(tpr, dtype=np.float64), [1.0]])
    if np.isnan(x).any() or np.isnan(y).any():
        return math.nan
    x, y = pareto_front(x, y)  # starts at FPR 0 (the added origin or a point above it)
    return float(np.sum((1 - x) * np.diff(y, prepend=0.0)))


def pareto_auc(labels, scores, signed: bool = False, ties: Ties = TIES) -> float:
    """:func:`pessimistic_auc` of the :func:`threshold_points` of ``scores`` (NaN without both
    classes). Meaningful only for a threshold-swept method, whose every distinct score is a run."""
    fpr, tpr = threshold_points(labels, scores, signed, ties)
    return pessimistic_auc(fpr, tpr) if fpr.size else math.nan


def downsample(xs, ys, max_points: int = 200) -> tuple[list[float], list[float]]:
    """At most ``max_points`` of a curve, evenly spaced by index, first and last kept."""
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if xs.size > max_points:
        idx = np.unique(np.linspace(0, xs.size - 1, max_points).round().astype(int))
        xs, ys = xs[idx], ys[idx]
    return xs.tolist(), ys.tolist()
