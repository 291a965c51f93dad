"""``summary.md`` of a run: method x task tables of the mean over seeds with its 95% interval,
the significant wins of each method (eval.scoring.compare), the command and the machine."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from eval.records import Record, atomic_write_text
from eval.scoring import compare, stats
from eval.scoring.converged import NOTE as CONVERGED_NOTE
from eval.scoring.converged import cell_mark

MEASURES = (
    ("AUC (rank, all edges)", "auc", "{:.3f}"),
    ("AUC (ACDC Pareto, threshold-swept methods only)", "auc_pareto", "{:.3f}"),
    ("AUROC (MIB, 10 circuit sizes)", "auroc_mib", "{:.3f}"),
    ("CPR (held-out, higher is better)", "cpr", "{:.3f}"),
    ("CMD (held-out, lower is better)", "cmd", "{:.3f}"),
    ("overshoot (CPR area above faithfulness 1)", "overshoot", "{:.3f}"),
    ("seconds", "seconds", "{:.2f}"),
)


def machine_info(device: str) -> dict:
    """Where a run ran: platform, CPU count, torch version and the accelerator, if any."""
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "device": device,
    }
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def mean_interval(values: list[float], fmt: str) -> str:
    """``mean [low, high]``: the 95% Student-t interval over seeds
    (:func:`eval.scoring.stats.t_interval`); ``mean`` alone for one seed (no interval), ``—`` for
    none."""
    mean, low, high = stats.t_interval(values)
    if mean != mean:  # NaN: no finite value
        return "—"
    if low != low:
        return fmt.format(mean)
    return f"{fmt.format(mean)} [{fmt.format(low)}, {fmt.format(high)}]"


def table(records: list[Record], attr: str, fmt: str) -> str:
    """A markdown table, a row per method and a column per task, over the ``ok`` records."""
    methods = sorted({r.method for r in records})
    tasks = sorted({r.task for r in records})
    lines = ["| method | " + " | ".join(tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for m in methods:
        cells = []
        for t in tasks:
            cell = [r for r in records if r.ok and r.method == m and r.task == t]
            mark = cell_mark(r.converged for r in cell)
            cells.append(mean_interval([getattr(r, attr) for r in cell], fmt) + mark)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def status_lines(records: list[Record]) -> list[str]:
    """One line per skipped task (or per task and reason, naming the methods) and failed run."""
    all_methods = sorted({r.method for r in records})
    skipped: dict[tuple[str, str], set[str]] = {}
    lines = []
    for r in records:
        if r.status.startswith("skipped"):
            skipped.setdefault((r.task, r.status), set()).add(r.method)
        elif not r.ok:
            lines.append(f"- `{r.method}` on `{r.task}` seed {r.seed}: {r.status}")
    for (task, status), methods in sorted(skipped.items()):
        if sorted(methods) == all_methods:
            lines.insert(0, f"- task `{task}` {status}")
        else:
            names = ", ".join(f"`{m}`" for m in sorted(methods))
            lines.insert(0, f"- {names} on `{task}` {status}")
    return lines


WIN_METRICS = (("AUC", "auc"), ("CPR", "cpr"), ("CMD", "cmd"))


def wins_lines(records: list[Record], alpha: float = 0.05) -> list[str]:
    """Per measure, each method's significant wins (eval.scoring.compare: paired Wilcoxon over
    shared (task, ablation, seed) cells, Holm over all pairs); nothing claimed without the test."""
    lines = [
        f"Paired Wilcoxon signed-rank over shared (task, ablation, seed) cells, Holm-adjusted over "
        f"all pairs of methods, alpha {alpha} (`circuitbench compare RUN_DIR --metric M` "
        "prints every pair)."
    ]
    for label, metric in WIN_METRICS:
        have = compare.cells(records, metric)
        if len(have) < 2:
            continue
        by = compare.wins(compare.compare(records, metric, alpha=alpha))
        lines.append("")
        if not by:
            lines.append(f"- {label}: no method is significantly better than another.")
            continue
        for m in sorted(by, key=lambda m: (-len(by[m]), m)):
            beaten = ", ".join(f"`{x}`" for x in sorted(by[m]))
            lines.append(f"- {label}: `{m}` beats {len(by[m])}: {beaten}")
    return lines


def summary_markdown(records: list[Record], info: dict) -> str:
    n_ok = sum(r.ok for r in records)
    seeds = sorted({r.seed for r in records})
    parts = [
        "# Run summary",
        "",
        f"Command: `{info.get('command', '?')}`",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in info.get("machine", {}).items()),
        "",
        f"{n_ok} of {len(records)} runs ok; seeds {seeds}. Cells: the mean over seeds and its 95% "
        "Student-t interval [low, high] (one seed: the value, no interval). A seed draws the "
        "train examples and seeds the method's own randomness; faithfulness is measured on the "
        "task's fixed held-out split.",
    ]
    if any(r.ok and r.converged is False for r in records):
        parts += ["", CONVERGED_NOTE]
    if info.get("status") == "interrupted":  # eval.run on SIGINT/SIGTERM (eval.interrupt)
        parts += [
            "",
            f"**Interrupted** by {info.get('signal')}: {info.get('finished_jobs')} "
            f"jobs finished, {info.get('pending_jobs')} pending; finish with `--resume`.",
        ]
    for title, attr, fmt in MEASURES:
        parts += ["", f"## {title}", "", table(records, attr, fmt)]
    parts += ["", "## Significant wins", "", *wins_lines(records)]
    status = status_lines(records)
    if status:
        parts += ["", "## Skipped and failed", "", *status]
    notes = sorted({(r.task, r.note) for r in records if r.note})
    if notes:
        parts += ["", "## Notes", "", *(f"- `{task}`: {note}" for task, note in notes)]
    return "\n".join(parts) + "\n"


def write_summary(folder: str | Path, records: list[Record], info: dict) -> None:
    atomic_write_text(Path(folder) / "summary.md", summary_markdown(records, info))
