"""Which method is better, as a test: paired comparisons over the cells two methods share.

    python -m eval.scoring.compare RUN_DIR [--metric auc|cpr|cmd|auroc_mib|ap] [--methods a,b,...]
                                   [--unit cell|task] [--alpha 0.05] [--json OUT]

For every pair of methods, over the (task, ablation, seed) cells where both have a finite value:
the number of cells, the median paired difference, the two-sided Wilcoxon signed-rank p-value
(:func:`eval.scoring.stats.wilcoxon_p`), its Holm-adjusted value over all pairs printed (family-wise
error at ``--alpha``), the Vargha-Delaney A12 effect size of the first method over the second
(oriented so that > 0.5 means the first is better, also for CMD where lower is better), and the
verdict: the better method where the adjusted p-value is below ``--alpha``, else "no
significant difference". ``--unit cell`` (default) treats each (task, ablation, seed) cell as one
paired observation, as InterpBench pairs over models; seeds of one task are not independent
models, and a deterministic method repeats one value over a tracr task's seeds, so ``--unit
task`` first averages each method over the seeds both have of a (task, ablation) and pairs those
means: fewer observations, none counted twice.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from eval.records import Record, atomic_write_text, read_records
from eval.scoring import stats

UNIT_TEXT = {"cell": "(task, ablation, seed) cells", "task": "(task, ablation) means over seeds"}
METRICS = {"auc": True, "cpr": True, "cmd": False, "auroc_mib": True, "ap": True}  # higher better?


@dataclass(frozen=True)
class Comparison:
    """One pair's verdict on ``metric`` (a and b are method keys)."""

    a: str
    b: str
    metric: str
    n_cells: int
    median_diff: float  # median of a - b (raw metric units)
    p: float
    p_holm: float
    a12: float  # P(a better than b) + ties / 2
    better: str  # a, b, or "" (no significant difference)


def cells(records: list[Record], metric: str) -> dict[str, dict[tuple, float]]:
    """method -> {(task, ablation, seed): value} over ``ok`` records with a finite value."""
    out: dict[str, dict[tuple, float]] = {}
    for r in records:
        v = getattr(r, metric)
        if r.ok and v is not None and math.isfinite(v):
            out.setdefault(r.method, {})[(r.task, r.ablation, r.seed)] = float(v)
    return out


def by_task(by: dict[str, dict[tuple, float]], a: str, b: str) -> tuple[list, list]:
    """(a's, b's) means over the seeds both have, one per (task, ablation) both have."""
    groups: dict[tuple, list] = {}
    for cell in set(by[a]) & set(by[b]):
        groups.setdefault(cell[:2], []).append(cell)
    keys = sorted(groups)
    mean = statistics.fmean
    return [mean(by[a][c] for c in groups[k]) for k in keys], [
        mean(by[b][c] for c in groups[k]) for k in keys
    ]


UNITS = ("cell", "task")


def compare(
    records: list[Record],
    metric: str = "auc",
    methods=None,
    alpha: float = 0.05,
    unit: str = "cell",
) -> list[Comparison]:
    """Every pair of ``methods`` (default: all with a value) compared on ``metric``, paired over
    (task, ablation, seed) cells (``unit="cell"``) or over (task, ablation) seed means."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {sorted(METRICS)}")
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; choose from {UNITS}")
    by = cells(records, metric)
    names = sorted(by) if methods is None else list(methods)
    missing = [m for m in names if m not in by]
    if missing:
        raise ValueError(
            f"no finite {metric} for {missing} in these records; methods with one: {sorted(by)}"
        )
    sign = 1.0 if METRICS[metric] else -1.0
    raw = []
    for a, b in itertools.combinations(names, 2):
        if unit == "task":
            va, vb = by_task(by, a, b)
        else:
            shared = sorted(set(by[a]) & set(by[b]))
            va, vb = [by[a][c] for c in shared], [by[b][c] for c in shared]
        x, y = [sign * v for v in va], [sign * v for v in vb]
        diff = statistics.median([p - q for p, q in zip(va, vb, strict=True)]) if va else math.nan
        raw.append((a, b, len(va), diff, stats.wilcoxon_p(x, y), stats.a12(x, y)))
    adjusted = stats.holm([r[4] for r in raw])
    out = []
    for (a, b, n, diff, p, eff), p_adj in zip(raw, adjusted, strict=True):
        better = ""
        if math.isfinite(p_adj) and p_adj < alpha:
            better = a if eff > 0.5 else b
        out.append(Comparison(a, b, metric, n, diff, p, p_adj, eff, better))
    return out


def wins(comparisons: list[Comparison]) -> dict[str, list[str]]:
    """method -> the methods it beats significantly (after Holm)."""
    out: dict[str, list[str]] = {}
    for c in comparisons:
        if c.better:
            loser = c.b if c.better == c.a else c.a
            out.setdefault(c.better, []).append(loser)
    return out


def table(comparisons: list[Comparison], alpha: float = 0.05, unit: str = "cell") -> str:
    """A markdown table of the comparisons, significant ones first, then by p."""
    rows = sorted(comparisons, key=lambda c: (not c.better, c.p_holm, c.a, c.b))
    lines = [
        "| A | B | pairs | median A-B | p (Wilcoxon) | p (Holm) | A12 | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in rows:
        verdict = f"**{c.better}** better" if c.better else "no significant difference"
        lines.append(
            f"| {c.a} | {c.b} | {c.n_cells} | {c.median_diff:+.3f} | {c.p:.2g} | "
            f"{c.p_holm:.2g} | {c.a12:.2f} | {verdict} |"
        )
    lines.append(
        f"\nPaired two-sided Wilcoxon signed-rank over {UNIT_TEXT[unit]}, zero "
        f"differences split; Holm-adjusted over the {len(comparisons)} pairs, alpha {alpha}; "
        "A12 = P(A better than B) + ties/2."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m eval.scoring.compare", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("run_dir", help="a run folder of eval.run (holds records.csv)")
    p.add_argument("--metric", default="auc", choices=sorted(METRICS))
    p.add_argument("--methods", default=None, help="comma-separated method keys (default: all)")
    p.add_argument("--alpha", type=float, default=0.05, help="family-wise error (%(default)s)")
    p.add_argument(
        "--unit",
        default="cell",
        choices=UNITS,
        help="pair over (task, ablation, seed) cells (default) or per-task seed means",
    )
    p.add_argument("--json", default=None, help="also write the comparisons as JSON here")
    args = p.parse_args(argv)
    if not 0 < args.alpha < 1:
        print(f"error: --alpha must be in (0, 1), got {args.alpha}", file=sys.stderr)
        return 2
    try:
        records = read_records(args.run_dir)
        methods = args.methods.split(",") if args.methods else None
        if methods is not None and len(set(methods)) != len(methods):
            raise ValueError(f"--methods names a method twice: {args.methods}")
        result = compare(records, args.metric, methods, args.alpha, args.unit)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not result:
        print("error: need at least two methods to compare", file=sys.stderr)
        return 2
    print(table(result, args.alpha, args.unit))
    if args.json:
        atomic_write_text(Path(args.json), json.dumps([asdict(c) for c in result], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
