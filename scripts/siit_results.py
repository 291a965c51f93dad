"""The README's table of the learned (SIIT) tasks: per method, edge AUC and CPR as the mean over
tasks of each task's seed mean, with a 95% Student-t interval over the tasks, the worst task,
and how many runs did not converge.

    python scripts/siit_results.py results/siit
"""

from __future__ import annotations

import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eval.scoring.stats import t_interval  # noqa: E402


def _float(x: str) -> float:
    try:
        return float(x)
    except ValueError:
        return math.nan


def table(run: Path) -> str:
    rows = [r for r in csv.DictReader((run / "records.csv").open()) if r["status"] == "ok"]
    cells: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    unconverged: dict[str, int] = defaultdict(int)
    runs: dict[str, int] = defaultdict(int)
    for r in rows:
        for m in ("auc", "cpr"):
            cells[r["method"]][m][r["task"]].append(_float(r[m]))
        runs[r["method"]] += 1
        unconverged[r["method"]] += r.get("converged", "") in ("False", "false", "0")
    out = [
        "| method | tasks | AUC mean [95% CI] | AUC worst task | CPR mean [95% CI] | "
        "unconverged runs |",
        "|---|---|---|---|---|---|",
    ]
    order = sorted(cells, key=lambda k: -_mean(cells[k]["auc"]))
    for method in order:
        auc = [sum(v) / len(v) for v in cells[method]["auc"].values()]
        cpr = [sum(v) / len(v) for v in cells[method]["cpr"].values()]
        a, alo, ahi = t_interval(auc)
        c, clo, chi = t_interval(cpr)
        out.append(
            f"| {method} | {len(auc)} | {a:.3f} [{alo:.3f}, {ahi:.3f}] | {min(auc):.3f} | "
            f"{c:.3f} [{clo:.3f}, {chi:.3f}] | {unconverged[method]} of {runs[method]} |"
        )
    return "\n".join(out)


def _mean(by_task: dict[str, list[float]]) -> float:
    means = [sum(v) / len(v) for v in by_task.values()]
    return sum(means) / len(means)


if __name__ == "__main__":
    print(table(Path(sys.argv[1])))
