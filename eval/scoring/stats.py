"""Intervals and paired tests for verdicts: short pure functions on lists of numbers.

- :func:`t_interval`: the mean over seeds with its 95% Student-t interval (the summary's cells).
- :func:`wilcoxon_p`: the two-sided paired Wilcoxon signed-rank p-value over matched cells (the
  test InterpBench reports between methods, Gupta et al. 2024), zero differences split between
  the signs (``zero_method="zsplit"``), so cells where two methods tie count against a
  difference instead of being dropped.
- :func:`a12`: the Vargha-Delaney A12 effect size, P(a > b) + P(a = b) / 2 over all pairs
  (0.5 = no effect; 0.71 and above is conventionally "large").
- :func:`holm`: Holm's step-down adjustment of a family of p-values (family-wise error rate).
"""

from __future__ import annotations

import math
import statistics

import numpy as np
from scipy import stats as sps

LEVEL = 0.95  # every interval in the summary and the plots


def finite(values) -> list[float]:
    return [float(x) for x in values if x is not None and math.isfinite(float(x))]


def t_interval(values, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high) of the finite ``values``: the Student-t interval of the mean over
    seeds. One value: (value, NaN, NaN), no interval; none: all NaN."""
    v = finite(values)
    if not v:
        return math.nan, math.nan, math.nan
    mean = statistics.fmean(v)
    if len(v) < 2:
        return mean, math.nan, math.nan
    half = float(sps.t.ppf((1 + level) / 2, len(v) - 1)) * statistics.stdev(v) / math.sqrt(len(v))
    return mean, mean - half, mean + half


def half_width(values, level: float = LEVEL) -> float:
    """Half the width of :func:`t_interval` (NaN with fewer than two finite values)."""
    mean, low, high = t_interval(values, level)
    return (high - low) / 2


def wilcoxon_p(a, b) -> float:
    """Two-sided paired Wilcoxon signed-rank p-value of ``a - b`` (equal lengths, matched
    cells). 1.0 when every difference is 0 (no evidence of a difference); NaN with no pairs."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples must match, got {x.shape} and {y.shape}")
    if x.size == 0:
        return math.nan
    d = x - y
    if not np.any(d != 0):
        return 1.0
    return float(sps.wilcoxon(d, zero_method="zsplit", alternative="two-sided").pvalue)


def a12(a, b) -> float:
    """Vargha-Delaney A12: the probability that a value of ``a`` beats one of ``b`` (ties half)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size == 0 or y.size == 0:
        return math.nan
    greater = (x[:, None] > y[None, :]).sum()
    equal = (x[:, None] == y[None, :]).sum()
    return float((greater + 0.5 * equal) / (x.size * y.size))


def holm(pvalues) -> list[float]:
    """Holm-adjusted p-values, in the order given (NaN stays NaN and is not counted)."""
    p = [float(x) for x in pvalues]
    idx = sorted((i for i, x in enumerate(p) if math.isfinite(x)), key=lambda i: p[i])
    m, out, running = len(idx), [math.nan] * len(p), 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out
