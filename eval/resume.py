"""``--resume DIR``: rerun only the jobs of a run that have no finished record.

A run's ``run.json`` holds its resolved configuration (:func:`config_of`: methods, tasks, seeds,
ablations, n, device, threads, plugins, and for each prompt-pair file task the sha256 of its data
and ground-truth files, its metric, its model and the model weights' sha256); resuming checks
that the new command resolves to the same one (exit 2 naming each difference otherwise), keeps the
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
        "inputs": {key: inputs_of(spec) for key, spec in sorted(plan.specs.items())},
    }


def inputs_of(spec: dict) -> dict:
    """What a configured task's records depend on beyond its key: for a prompt-pair file, the
    content hash of its data and truth files, the metric, the model and its weights' digest
    (tasks.file_task.fingerprint); for a task given ``--model``, the model and its digest."""
    from models import resolve
    from tasks.configured import is_configured_spec
    from tasks.file_task import fingerprint

    if is_configured_spec(spec):
        return {"model": spec["model"], "model_sha256": resolve(spec["model"]).digest()}
    return fingerprint(spec)


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Each differing entry, nested dicts (``inputs``) entry by entry
    (``inputs.file-x.data_sha256: the run has ..., this command ...``)."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if (prefix or _nested(a)) and _nested(a) is not None and _nested(b) is not None:
            out += differences(a, b, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}: the run has {a!r}, this command {b!r}")
    return out


def _nested(value) -> bool | None:
    """None: not a dict; True: a dict of dicts (``inputs``, compared entry by entry)."""
    if not isinstance(value, dict):
        return None
    return all(isinstance(v, dict) for v in value.values())


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
    # a run of a version before input hashes: no file task is assumed (one that had is refused)
    diff = differences({"inputs": {}, **info["config"]}, config)
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
