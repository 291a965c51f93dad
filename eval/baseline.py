"""Baselines and the regression check.

A baseline is a JSON file with a schema version and one entry per (method, task, ablation): the
mean AUC, CPR and wall seconds over a run's seeds, and the entry's tolerances: the half-width of
the 95% t-interval over its seeds (eval.scoring.stats), at least a floor. The check compares
intervals, not values: it fails an entry whose AUC or CPR mean fell below the baseline's by more
than the baseline's tolerance plus the half-width of this run's own interval (the two intervals are
apart and the drop exceeds the floor), so a replica whose floats differ passes, or whose wall time
grew more than ``time_factor`` times (and by more than ``time_floor_s`` seconds, so that millisecond
noise on tiny tasks never counts; time is only compared on the same device).

    python -m eval.baseline RUN_DIR [--out results/baseline.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from eval.records import RUN_INFO, Record, atomic_write_text, read_records, to_json
from eval.scoring import stats

SCHEMA = "circuitbench-baseline/1"
DEFAULT_PATH = Path("results/baseline.json")


class BaselineError(ValueError):
    """A baseline file that can't be used (missing, unreadable, another schema)."""


@dataclass(frozen=True)
class Tolerances:
    """Tolerance of an entry: ``max(floor, half-width of the 95% t-interval over its seeds)``;
    the floors (AUC 0.02, CPR 0.05) cover what one seed can't estimate."""

    auc: float = 0.02
    cpr: float = 0.05
    time_factor: float = 2.0
    time_floor_s: float = 1.0


def _mean(values) -> float:
    v = [x for x in values if math.isfinite(x)]
    return statistics.fmean(v) if v else math.nan


def _half_width(values) -> float:
    """The 95% t half-width over seeds (0 with one seed: no interval)."""
    half = stats.half_width(values)
    return half if math.isfinite(half) else 0.0


def _tol(values, floor: float) -> float:
    return max(floor, _half_width(values))


def _groups(records: list[Record]) -> dict[tuple[str, str, str], list[Record]]:
    out: dict[tuple[str, str, str], list[Record]] = {}
    for r in records:
        out.setdefault((r.method, r.task, r.ablation), []).append(r)
    return out


def build_baseline(records: list[Record], source: str = "", tol: Tolerances = Tolerances()) -> dict:
    """The baseline of a run: one entry per (method, task, ablation) with an ``ok`` record."""
    entries = []
    for (method, task, ablation), rs in sorted(_groups(records).items()):
        ok = [r for r in rs if r.ok]
        if not ok:
            continue
        auc, cpr = [r.auc for r in ok], [r.cpr for r in ok]
        entries.append(
            dict(
                method=method,
                task=task,
                ablation=ablation,
                n=ok[0].n,
                device=ok[0].device,
                n_seeds=len(ok),
                auc=_mean(auc),
                cpr=_mean(cpr),
                seconds=_mean([r.seconds for r in ok]),
                auc_tol=_tol(auc, tol.auc),
                cpr_tol=_tol(cpr, tol.cpr),
                time_factor=tol.time_factor,
                time_floor_s=tol.time_floor_s,
            )
        )
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {"schema": SCHEMA, "source": source, "created": created, "entries": entries}


def write_baseline(path: str | Path, baseline: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, to_json(baseline) + "\n")


ENTRY_KEYS = {
    "method",
    "task",
    "ablation",
    "n",
    "device",
    "auc",
    "cpr",
    "seconds",
    "auc_tol",
    "cpr_tol",
    "time_factor",
    "time_floor_s",
}


STR_KEYS = ("method", "task", "ablation", "device")
NULLABLE_NUMBERS = ("auc", "cpr", "seconds")  # NaN is written as null
NUMBERS = ("auc_tol", "cpr_tol", "time_factor", "time_floor_s")


def load_baseline(path: str | Path) -> dict:
    """Read and validate a baseline file; :class:`BaselineError` says what is wrong (D3: every
    entry checked here, before a run starts, not when the check meets it)."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise BaselineError(f"can't read baseline {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BaselineError(f"baseline {path} is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BaselineError(f"baseline {path} is not valid JSON: {exc}") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if schema != SCHEMA:
        raise BaselineError(
            f"baseline {path} has schema {schema!r}, but this version reads {SCHEMA!r}; "
            f"rebuild it with: python -m eval.baseline RUN_DIR --out {path}"
        )
    if not isinstance(data.get("entries"), list):
        raise BaselineError(f"baseline {path} has no 'entries' list")
    for i, e in enumerate(data["entries"]):
        problem = entry_problem(e)
        if problem:
            raise BaselineError(f"baseline {path} entry {i}{problem}")
    return data


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def entry_problem(e) -> str | None:
    """What is wrong with one baseline entry (a phrase to follow "entry i"), or None."""
    if not isinstance(e, dict):
        return " is not an object"
    missing = ENTRY_KEYS - set(e)
    if missing:
        return f" lacks {sorted(missing)}"
    for k in STR_KEYS:
        if not isinstance(e[k], str):
            return f": {k} must be a string, got {e[k]!r}"
    if not (isinstance(e["n"], int) and not isinstance(e["n"], bool) and e["n"] >= 1):
        return f": n must be a positive integer, got {e['n']!r}"
    for k in NULLABLE_NUMBERS:
        if e[k] is not None and not _is_number(e[k]):
            return f": {k} must be a number (or null), got {e[k]!r}"
    for k in NUMBERS:
        if not (_is_number(e[k]) and e[k] >= 0):
            return f": {k} must be a number >= 0, got {e[k]!r}"
    return None


def _value(x) -> float:
    return math.nan if x is None else float(x)


def check_entry(entry: dict, rs: list[Record]) -> tuple[list[str], list[str]]:
    """(regressions, notes) of one baseline entry against this run's records of it."""
    name = f"{entry['method']} on {entry['task']} ({entry['ablation']})"
    ok = [r for r in rs if r.ok]
    if not ok:
        return [f"{name}: no successful run ({rs[0].status})"], []
    if any(r.n != entry["n"] for r in ok):
        return [], [f"{name}: run with n={ok[0].n}, baseline n={entry['n']}; not compared"]
    fails = []
    for label, attr in (("AUC", "auc"), ("CPR", "cpr")):
        base, tol = _value(entry[attr]), _value(entry[f"{attr}_tol"])
        values = [getattr(r, attr) for r in ok]
        now, margin = _mean(values), tol + _half_width(values)
        if math.isfinite(base) and not now >= base - margin:  # NaN now counts as a fall
            fails.append(
                f"{name}: {label} {now:.4f} fell below baseline {base:.4f} by more than the two "
                f"intervals allow ({margin:.4f}: baseline {tol:.4f} + this run's "
                f"{margin - tol:.4f})"
            )
    if ok[0].device != entry["device"]:
        return fails, [
            f"{name}: ran on {ok[0].device}, baseline on {entry['device']}; time not compared"
        ]
    base_s, now_s = _value(entry["seconds"]), _mean([r.seconds for r in ok])
    factor, floor = float(entry["time_factor"]), float(entry["time_floor_s"])
    if now_s > factor * base_s and now_s - base_s > floor:
        fails.append(
            f"{name}: wall time {now_s:.2f}s grew more than {factor:g}x baseline {base_s:.2f}s"
        )
    return fails, []


def _attempted(groups: dict, entry: dict) -> list[Record]:
    """This run's records of a baseline entry, or [] when the run did not attempt it (another
    subset of methods and tasks, or every run of it skipped)."""
    rs = groups.get((entry["method"], entry["task"], entry["ablation"]), [])
    return [] if all(r.status.startswith("skipped") for r in rs) else rs


def check(records: list[Record], baseline: dict) -> tuple[list[str], list[str]]:
    """Regressions of ``records`` against ``baseline`` and notes on entries not compared.

    Baseline entries this run did not attempt (another subset of methods/tasks) are skipped.
    """
    groups = _groups(records)
    fails, notes = [], []
    for entry in baseline["entries"]:
        rs = _attempted(groups, entry)
        if not rs:
            continue
        f, n = check_entry(entry, rs)
        fails += f
        notes += n
    return fails, notes


def compared_entries(records: list[Record], baseline: dict) -> int:
    """How many baseline entries :func:`check` compares with ``records``: attempted by this
    run (not skipped) and, where a run succeeded, of the same n. Zero: the check can't fail."""
    groups = _groups(records)
    count = 0
    for entry in baseline["entries"]:
        rs = _attempted(groups, entry)
        if rs and not any(r.n != entry["n"] for r in rs if r.ok):
            count += 1
    return count


def check_comparable(baseline: dict, planned, path: str | Path) -> None:
    """BaselineError unless some entry of ``baseline`` matches a planned run ``(method, task,
    ablation, n)``: a check against an empty baseline, or one of other tasks, n or ablation,
    could never fail, so it is refused before anything runs."""
    keys = {(e["method"], e["task"], e["ablation"], e["n"]) for e in baseline["entries"]}
    if keys & set(planned):
        return
    has = ", ".join(sorted({f"{m} on {t} ({a}, n={n})" for m, t, a, n in keys})[:5]) or "none"
    raise BaselineError(
        f"--check {path}: no baseline entry matches a run of this command (same method, task, "
        f"ablation and n), so the check could never fail; the baseline has: {has}"
    )


def refuse_empty(baseline: dict, run_dir: str | Path) -> None:
    """BaselineError for a baseline of no entries (no run of ``run_dir`` succeeded)."""
    if not baseline["entries"]:
        raise BaselineError(
            f"no successful run in {run_dir}: a baseline of 0 entries would make every "
            "--check pass; fix the failing runs (see summary.md) and build it again"
        )


def check_finished(run_dir: str | Path) -> None:
    """ValueError when ``run.json`` says the run is interrupted or still running (D4): its
    records are a part of the run. Runs of older versions, without a status, pass."""
    info_path = Path(run_dir) / RUN_INFO
    if not info_path.is_file():
        return
    try:
        status = json.loads(info_path.read_text()).get("status", "finished")
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{info_path} is damaged: {exc}") from None
    if status != "finished":
        raise ValueError(
            f"{run_dir} is {status}, not finished: its records are a part of the run; "
            f"finish it with python -m eval.run ... --resume {run_dir}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eval.baseline", description="Write a baseline JSON from a run's records."
    )
    parser.add_argument("run_dir", help="a run folder of eval.run (holds records.csv)")
    parser.add_argument("--out", default=str(DEFAULT_PATH), help="baseline path (%(default)s)")
    parser.add_argument("--auc-tol", type=float, default=Tolerances.auc, help="AUC tolerance floor")
    parser.add_argument("--cpr-tol", type=float, default=Tolerances.cpr, help="CPR tolerance floor")
    parser.add_argument("--time-factor", type=float, default=Tolerances.time_factor)
    args = parser.parse_args(argv)
    try:
        check_finished(args.run_dir)
        records = read_records(args.run_dir)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tol = Tolerances(auc=args.auc_tol, cpr=args.cpr_tol, time_factor=args.time_factor)
    baseline = build_baseline(records, source=str(args.run_dir), tol=tol)
    try:
        refuse_empty(baseline, args.run_dir)
        write_baseline(args.out, baseline)
    except BaselineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: can't write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({len(baseline['entries'])} entries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
