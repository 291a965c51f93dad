"""``summary.md`` of a run: method x task tables of mean ± std over seeds, command and machine."""

from __future__ import annotations

import math
import os
import platform
import statistics
from pathlib import Path

import torch

from eval.converged import NOTE as CONVERGED_NOTE
from eval.converged import cell_mark
from eval.records import Record, atomic_write_text

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


def mean_std(values: list[float], fmt: str) -> str:
    """``mean ± sample std`` of the finite values (``mean`` alone for one, ``—`` for none)."""
    v = [x for x in values if math.isfinite(x)]
    if not v:
        return "—"
    if len(v) == 1:
        return fmt.format(v[0])
    return f"{fmt.format(statistics.fmean(v))} ± {fmt.format(statistics.stdev(v))}"


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
            cells.append(mean_std([getattr(r, attr) for r in cell], fmt) + mark)
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
        f"{n_ok} of {len(records)} runs ok; seeds {seeds}; cells are mean ± sample std over seeds.",
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
    status = status_lines(records)
    if status:
        parts += ["", "## Skipped and failed", "", *status]
    notes = sorted({(r.task, r.note) for r in records if r.note})
    if notes:
        parts += ["", "## Notes", "", *(f"- `{task}`: {note}" for task, note in notes)]
    return "\n".join(parts) + "\n"


def write_summary(folder: str | Path, records: list[Record], info: dict) -> None:
    atomic_write_text(Path(folder) / "summary.md", summary_markdown(records, info))
