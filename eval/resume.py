"""``--resume DIR``: rerun only the jobs of a run that have no finished record.

A run's ``run.json`` holds its resolved configuration (:func:`config_of`); resuming checks that
the new command resolves to the same one (exit 2 naming each difference otherwise), keeps the
records that finished (``ok`` and ``skipped``) with their curves, and reruns the rest: jobs
without a record (pending when the run was interrupted) and those that failed or timed out.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from eval.preflight import UsageError
from eval.records import RECORDS, RUN_INFO, Curves, Record, read_curves, read_records

FINISHED = ("ok", "skipped")


def config_of(plan) -> dict:
    """What decides a run's records (not how it is executed): compared on resume."""
    return {
        "methods": list(plan.methods),
        "tasks": list(plan.tasks),
        "seeds": plan.seeds,
        "ablations": dict(plan.ablations),
        "ns": dict(plan.ns),
        "device": plan.device,
        "threads": plan.threads,
        "plugins": list(plan.plugins),
    }


def differences(old: dict, new: dict) -> list[str]:
    return [
        f"{k}: the run has {old.get(k)!r}, this command {new.get(k)!r}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]


def finished(record: Record) -> bool:
    return record.status.split(":")[0] in FINISHED


@dataclass
class Resumed:
    info: dict  # the earlier run.json
    records: list[Record]  # finished records, kept
    curves: list[Curves]  # their curves


def load(folder: Path, config: dict) -> Resumed:
    """The finished part of the run in ``folder``; UsageError if it can't be resumed."""
    info_path = folder / RUN_INFO
    if not (folder / RECORDS).is_file() or not info_path.is_file():
        raise UsageError(f"--resume {folder}: no run there ({RECORDS} and {RUN_INFO} needed)")
    try:
        info = json.loads(info_path.read_text())
        records = read_records(folder)
        curves = read_curves(folder)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--resume {folder}: can't read the run: {exc}") from None
    if "config" not in info:
        raise UsageError(f"--resume {folder}: {RUN_INFO} has no config (a run of an older version)")
    diff = differences(info["config"], config)
    if diff:
        raise UsageError(
            f"--resume {folder}: this command differs from the run's: " + "; ".join(diff)
        )
    kept = [r for r in records if finished(r)]
    keys = {r.key for r in kept if r.ok}
    return Resumed(
        info, kept, [c for c in curves if (c.method, c.task, c.ablation, c.seed) in keys]
    )


def pending(jobs, kept: list[Record]):
    """The jobs of ``jobs`` without a finished record in ``kept``."""
    done = {r.key for r in kept}
    return [j for j in jobs if (j.method, j.task, j.ablation, j.seed) not in done]


def resume_command(command: str, out: Path) -> str:
    """The command that resumes a run of ``command`` (``python -m eval.run ...``) in ``out``:
    the same arguments without ``--out``/``--overwrite``/``--resume``, plus ``--resume out``."""
    argv = shlex.split(command)[3:]
    keep, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--out", "--resume"):
            skip = True
        elif a != "--overwrite" and not a.startswith(("--out=", "--resume=")):
            keep.append(a)
    return "python -m eval.run " + shlex.join([*keep, "--resume", str(out)])
