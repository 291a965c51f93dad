"""The benchmark runner: every method on every task for every seed, scored and recorded.

    python -m eval.run --methods all --tasks all --seeds 3 --device cpu --out DIR
    python -m eval.run --list
    python -m eval.run --methods ipd,eap --tasks ioi --check results/baseline.json

Each (method, task, seed) runs in its own process (eval.isolate), so its CPU peak memory is its
own. Results go to ``DIR`` (default ``results/runs/<timestamp>/``): records.csv,
curves.json, run.json, summary.md, plots/, logs/ (each worker's output), and scores/ and
traces/ (what each run found, eval.formats.found); the README's "Output" section lists the columns.

Jobs are run by an executor (eval.executors: ``--executor local|inline|ray``); ``--resume DIR``
reruns only the jobs of DIR without a finished record (eval.resume); one writer per folder
(eval.lock); SIGINT/SIGTERM stop the workers and leave a resumable folder (eval.interrupt).

Exit codes: 0 all ran; 1 a method or task failed or timed out, a plot failed, ``--check`` found a
regression, or nothing ran (every job skipped); 2 bad input (unknown name, ``--seeds 0``,
unwritable folder or baseline path, bad baseline, a plugin that fails to import, ``--n`` above a
task's limit, a folder another run is writing), before any record is written; 130 / 143
interrupted by SIGINT / SIGTERM (run.json says ``interrupted``; resume with ``--resume DIR``).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from eval import preflight, resume
from eval.baseline import (
    BaselineError,
    build_baseline,
    check,
    check_comparable,
    compared_entries,
    load_baseline,
    refuse_empty,
    write_baseline,
)
from eval.executors import ExecOptions, Executor, make_executor
from eval.interrupt import Interrupted, handle_signals
from eval.lock import FolderLock, FolderLocked
from eval.manifest import Manifest, listed, remove_previous_run, snapshot
from eval.preflight import UsageError
from eval.records import RECORDS, RUN_INFO, Curves, Record, atomic_write_text, to_json, write_run
from eval.summary import machine_info, write_summary
from eval.worker import Job

ABLATION_CHOICES = (
    "resample",
    "mean",
    "zero",
)  # patching.ablation.ABLATION_KINDS (checked in tests)


@dataclass
class Plan:
    methods: list[str]
    tasks: list[str]
    skipped: dict[str, str]  # task -> why it can't run here
    ablations: dict[str, str]  # task -> ablation (a concrete kind: defaults resolved here)
    ns: dict[str, int]  # task -> examples per run
    seeds: int
    device: str
    out: Path
    plugins: tuple[str, ...] = ()
    threads: int = 1
    executor: Executor | None = None
    plots: bool = True
    baseline: dict | None = None
    write_baseline: str | None = None
    command: str = ""
    jobs: list[Job] = field(default_factory=list)  # to run now (on --resume: the unfinished)
    n_jobs: int = 0  # all jobs of the run
    specs: dict[str, dict] = field(default_factory=dict)  # configured tasks (files, --model)
    kept: resume.Resumed | None = None  # --resume: what finished before
    lock: FolderLock | None = None
    manifest: Manifest | None = None  # the files this run writes (what --overwrite removes)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m eval.run",
        description="Run circuit-discovery methods on tasks and score them.",
    )
    p.add_argument("--methods", default="all", help="'all' or a comma list of method keys")
    p.add_argument("--tasks", default="all", help="'all' or a comma list of task keys")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds 0..S-1 (default 3)")
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="auto (default): cuda when available",
    )
    p.add_argument("--out", help="output folder (default results/runs/<timestamp>/)")
    p.add_argument(
        "--n", type=int, help="train examples per task (default: each task's n_default())"
    )
    p.add_argument(
        "--ablation",
        choices=ABLATION_CHOICES,
        help="ablation for every task (default: each task's default_ablation)",
    )
    p.add_argument("--list", action="store_true", help="list registered methods and tasks")
    p.add_argument("--check", metavar="BASELINE", help="fail (exit 1) on regressions against it")
    p.add_argument("--write-baseline", metavar="PATH", help="write a baseline from this run")
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (registers extra tasks/methods); repeatable",
    )
    p.add_argument(
        "--inline",
        action="store_true",
        help="same as --executor inline",
    )
    p.add_argument(
        "--executor",
        default="local",
        help="how jobs run: local (a process per job, default), pool (the same, --workers at "
        "a time), inline (this process), ray (a Ray task per job; pip install -e '.[ray]')",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="--executor pool: jobs at a time (default 2)"
    )
    p.add_argument("--address", help="--executor ray: an existing cluster (HOST:PORT or auto)")
    p.add_argument(
        "--resume", metavar="DIR", help="rerun only DIR's jobs without a finished record"
    )
    p.add_argument("--timeout", type=float, help="seconds one job may run (default: no limit)")
    p.add_argument(
        "--retries",
        type=int,
        default=1,
        help="reruns of a job whose worker was killed (default 1)",
    )
    p.add_argument("--memory-mb", type=int, help="--executor ray: memory a job declares (MiB)")
    p.add_argument("--no-plots", action="store_true", help="skip eval.plots at the end")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads per run (default 1: the offline tasks' models are tiny, "
        "where threads cost more than they give; raise it for GPT-2-sized models on CPU)",
    )
    p.add_argument("--overwrite", action="store_true", help="allow an --out that holds records")
    files = p.add_argument_group("tasks from a prompt-pair file (--tasks path/to/pairs.csv)")
    files.add_argument(
        "--model",
        help="model of file tasks (shipped: induction; a hub name or a local path) and of tasks "
        "not tied to one model (ioi: prompts are built with that model's tokenizer)",
    )
    files.add_argument("--metric", help="file tasks' metric: logit-diff (default), logprob, kl")
    files.add_argument("--truth", help="file tasks' ground truth: edge names (one a line) or MIB")
    return p


def registries():
    """The task and method registries, complete (importing the packages registers every entry)."""
    import methods
    import tasks

    return tasks.TASKS, methods.METHODS


def list_entries() -> str:
    tasks, methods = registries()
    lines = ["methods:"]
    lines += [f"  {k:<24} {methods.get(k).description or '-'}" for k in methods.keys()]
    lines.append("tasks:")
    for k in tasks.keys():
        reason = tasks.get(k)().unavailable_reason()
        note = f"  [unavailable: {reason}]" if reason else ""
        lines.append(f"  {k:<24} {tasks.get(k).description or '-'}{note}")
    return "\n".join(lines)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda, but CUDA is not available here; use --device cpu")
    return device


def prepare_out(out: str | None, overwrite: bool, resuming: bool = False) -> Path:
    """Create the output folder and prove it writable, or raise UsageError."""
    if out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path("results/runs") / stamp
        i = 1
        while path.exists():
            path, i = Path("results/runs") / f"{stamp}-{i}", i + 1
    else:
        path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test"):
            pass
    except OSError as exc:
        raise UsageError(f"can't write to output folder {path}: {exc.strerror or exc}") from None
    if (path / RECORDS).exists() and not overwrite and not resuming:
        raise UsageError(
            f"{path} already holds a run ({RECORDS}); pass --resume {path}, --overwrite "
            "or another --out"
        )
    return path


def make_plan(args: argparse.Namespace, argv: list[str]) -> Plan:
    """Validate every input and resolve keys (UsageError, UnknownKeyError, BaselineError)."""
    _check_sizes(args)
    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    out_arg = _out_arg(args)
    executor = _executor(args)
    if args.write_baseline:
        preflight.check_writable_file(args.write_baseline, "--write-baseline")
    tasks, methods = registries()
    from tasks.file_task import FileTaskError, expand_task_files

    try:  # prompt-pair files: registered (and checked) here, before anything runs
        task_spec, file_specs = expand_task_files(args.tasks, args.model, args.metric, args.truth)
    except FileTaskError as exc:
        raise UsageError(str(exc)) from None
    method_keys, task_keys = methods.resolve(args.methods), tasks.resolve(task_spec)
    if args.model:  # tasks not tied to one model (ioi) run on --model too
        from tasks.configured import ModelOptionError, with_model

        try:
            task_keys, model_specs = with_model(task_keys, args.model)
        except ModelOptionError as exc:
            if not file_specs:
                raise UsageError(str(exc)) from None
            model_specs = {}  # the files took the model; the other tasks keep theirs
        file_specs = {**file_specs, **model_specs}
    baseline = load_baseline(args.check) if args.check else None
    device = resolve_device(args.device)
    skipped, ablations, ns, limits = {}, {}, {}, {}
    for key in task_keys:
        task = tasks.get(key)()
        ablations[key] = args.ablation or task.default_ablation
        ns[key], limits[key] = args.n or task.n_default(), task.max_train()
        reason = task.unavailable_reason()
        if reason is None and ablations[key] not in task.ablations:
            has = ", ".join(task.ablations)
            reason = f"no ground truth under {ablations[key]} ablation (has: {has})"
        if reason:
            skipped[key] = reason
        elif args.n is None and getattr(task, "size_note", None) and task.size_note():
            print(f"note: {task.size_note()}", file=sys.stderr)
    preflight.check_n([k for k in task_keys if k not in skipped], ns, limits)  # D5
    plan = Plan(
        method_keys,
        task_keys,
        skipped,
        ablations,
        ns,
        args.seeds,
        device,
        out=Path(out_arg or "."),
        plugins=tuple(args.plugin),
        threads=args.threads,
        executor=executor,
        plots=not args.no_plots,
        baseline=baseline,
        write_baseline=args.write_baseline,
        command="python -m eval.run " + shlex.join(argv),
        specs={k: v for k, v in file_specs.items() if k in task_keys and k not in skipped},
    )
    plan.jobs = [
        Job(m, t, s, ablations[t], ns[t], device, plan.plugins, args.threads, file_specs.get(t))
        for t in task_keys
        if t not in skipped
        for m in method_keys
        for s in range(args.seeds)
    ]
    plan.n_jobs = len(plan.jobs)
    if baseline is not None:  # a check that compares nothing can't fail: refused (exit 2)
        planned = {(j.method, j.task, j.ablation, j.n) for j in plan.jobs}
        check_comparable(baseline, planned, args.check)
    claim_out(plan, out_arg, args)
    return plan


def _check_sizes(args: argparse.Namespace) -> None:
    """--seeds and --n within core.limits (an absurd size is refused, not run out of memory)."""
    from core.limits import MAX_N, MAX_SEEDS, SizeError, check_size

    try:
        check_size("--seeds", args.seeds, MAX_SEEDS)
        if args.n is not None:
            check_size("--n", args.n, MAX_N)
    except SizeError as exc:
        raise UsageError(str(exc)) from None


def _out_arg(args: argparse.Namespace) -> str | None:
    if args.resume is None:
        return args.out
    if args.overwrite:
        raise UsageError("--resume keeps a run's finished records; --overwrite discards them")
    if args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
        raise UsageError(f"--resume {args.resume} writes there; drop --out {args.out}")
    if not Path(args.resume).is_dir():
        raise UsageError(f"--resume {args.resume}: no such folder")
    return args.resume


def _executor(args: argparse.Namespace) -> Executor:
    key = "inline" if args.inline else args.executor
    if args.inline and args.executor not in ("local", "inline"):
        raise UsageError(f"--inline and --executor {args.executor} contradict each other")
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout}")
    if args.retries < 0:
        raise UsageError(f"--retries must be at least 0, got {args.retries}")
    if key != "ray" and (args.address or args.memory_mb is not None):
        raise UsageError("--address and --memory-mb are for --executor ray")
    if args.workers is not None and key != "pool":
        raise UsageError("--workers is for --executor pool")
    workers = 2 if args.workers is None else args.workers
    opts = ExecOptions(args.timeout, args.retries, args.memory_mb, args.address, workers)
    executor = make_executor(key, opts)
    try:
        executor.check()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return executor


def claim_out(plan: Plan, out_arg: str | None, args: argparse.Namespace) -> None:
    """Create and lock the output folder (D2), then empty it (--overwrite, D9) or read what
    finished (--resume); the last step of planning, so bad input never touches a folder."""
    plan.out = prepare_out(out_arg, args.overwrite, resuming=args.resume is not None)
    plan.lock = FolderLock(plan.out)
    try:
        if args.resume is not None:
            plan.kept = resume.load(plan.out, resume.config_of(plan))
            plan.jobs = resume.pending(plan.jobs, plan.kept.records)
        elif args.overwrite:
            remove_previous_run(plan.out)  # what the previous run wrote (its manifest), only
    except BaseException:
        plan.lock.release()
        raise


def execute(plan: Plan) -> int:
    """Run the plan, writing records after every run; the exit code (0, 1, 130 or 143)."""
    from tqdm import tqdm

    info = {
        "command": plan.command,
        "machine": machine_info(plan.device),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "executor": plan.executor.key,
        "cost_note": plan.executor.cost_note(),
        "config": resume.config_of(plan),
        "status": "running",
    }
    earlier = (listed(plan.out) or set()) if plan.kept is not None else set()
    plan.manifest = Manifest(plan.out, snapshot(plan.out), earlier)
    if plan.kept is not None:
        info["resumed"] = [*plan.kept.info.get("resumed", []), info["started"]]
        info["started"] = plan.kept.info.get("started", info["started"])
    atomic_write_text(plan.out / RUN_INFO, to_json(info))
    records, curves = _start_records(plan)
    write_run(plan.out, records, curves)
    plan.manifest.update()
    try:
        results = plan.executor.run(plan.jobs, plan.out)
        with tqdm(results, total=len(plan.jobs), desc="runs", unit="run", file=sys.stderr) as bar:
            for job, rec, cur in bar:
                bar.set_postfix_str(f"{job.method} on {job.task}, seed {job.seed}")
                records.append(rec)
                if rec.ok:
                    curves.append(cur)
                else:
                    tqdm.write(
                        f"{job.method} on {job.task} seed {job.seed}: {rec.status}",
                        file=sys.stderr,
                    )
                write_run(plan.out, _in_plan_order(plan, records), _in_plan_order(plan, curves))
                plan.manifest.update()
    except (Interrupted, KeyboardInterrupt) as exc:  # KeyboardInterrupt: raised by --inline code
        plan.executor.stop()
        sig = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
        return interrupted(plan, records, info, sig)
    except OSError as exc:  # disk full or folder gone while writing: the records written stand
        plan.executor.stop()
        return write_failed(plan, info, exc)
    finally:
        plan.executor.stop()
    info["status"] = "finished"
    try:
        return finish(plan, records, info)
    except OSError as exc:
        return write_failed(plan, info, exc)


def _in_plan_order(plan: Plan, records: list) -> list:
    """Records (or curves) in the plan's order (task, method, seed), whatever order they
    finished in, so that every executor writes the same files."""
    rank = {t: i for i, t in enumerate(plan.tasks)}, {m: i for i, m in enumerate(plan.methods)}
    return sorted(
        records, key=lambda r: (rank[0].get(r.task, -1), rank[1].get(r.method, -1), r.seed)
    )


def _start_records(plan: Plan) -> tuple[list[Record], list[Curves]]:
    """The records before any job runs: what finished before (--resume), and a skip record for
    each (method, seed) of a task that can't run here that has none yet."""
    records: list[Record] = [] if plan.kept is None else list(plan.kept.records)
    curves: list[Curves] = [] if plan.kept is None else list(plan.kept.curves)
    have = {(r.method, r.task, r.seed) for r in records}
    for task, reason in plan.skipped.items():
        print(f"skip task {task}: {reason}", file=sys.stderr)
        records += [
            Record(
                m, task, plan.ablations[task], s, status=f"skipped: {reason}", device=plan.device
            )
            for m in plan.methods
            for s in range(plan.seeds)
            if (m, task, s) not in have
        ]
    return records, curves


def interrupted(plan: Plan, records: list[Record], info: dict, sig: Interrupted) -> int:
    """After SIGINT/SIGTERM: run.json marked interrupted with counts, the summary of what
    finished, one line saying how to resume (D4); the exit code 128 + signal."""
    done = len(records)  # every record is a job that ended (ok, skipped, failed)
    n_total = plan.n_jobs + len(plan.skipped) * len(plan.methods) * plan.seeds
    info.update(
        status="interrupted",
        signal=sig.name,
        interrupted=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        finished_jobs=done,
        pending_jobs=max(0, n_total - done),
    )
    atomic_write_text(plan.out / RUN_INFO, to_json(info))
    write_summary(plan.out, records, info)
    plan.manifest.update()
    print(
        f"interrupted by {sig.name}: {done} of {n_total} jobs have records; resume with: "
        f"{resume.resume_command(plan.command, plan.out)}",
        file=sys.stderr,
    )
    return sig.exit_code


def write_failed(plan: Plan, info: dict, exc: OSError) -> int:
    """After a failed write (disk full): run.json marked ``failed`` if it can still be written,
    one line naming the problem and how to resume; exit 1. Every file is written atomically,
    so records.csv holds the records up to the last good write and ``--resume`` reruns the rest."""
    problem = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
    info.update(status="failed", error=f"write failed: {problem}")
    try:
        atomic_write_text(plan.out / RUN_INFO, to_json(info))
    except OSError:
        pass  # still full: run.json says running; the message below says why
    print(
        f"error: can't write the run folder {plan.out}: {problem}; free space, then resume "
        f"with: {resume.resume_command(plan.command, plan.out)}",
        file=sys.stderr,
    )
    return 1


def finish(plan: Plan, records: list[Record], info: dict) -> int:
    """Summary, plots, baseline and the regression check; the exit code."""
    code = 0
    failed = [r for r in records if not r.ok and not r.status.startswith("skipped")]
    if failed:
        print(f"{len(failed)} of {len(records)} runs failed (see summary.md)", file=sys.stderr)
        code = 1
    if records and all(r.status.startswith("skipped") for r in records):  # D12
        reasons = sorted({f"{r.task}: {r.status}" for r in records})
        print("nothing ran; every job was skipped:\n  " + "\n  ".join(reasons), file=sys.stderr)
        code = 1
    info["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_text(plan.out / RUN_INFO, to_json(info))
    write_summary(plan.out, records, info)
    if plan.plots:
        code = max(code, _plots(plan.out))
    if plan.write_baseline:
        try:
            baseline = build_baseline(records, source=str(plan.out))
            refuse_empty(baseline, plan.out)
            write_baseline(plan.write_baseline, baseline)
            print(f"wrote baseline {plan.write_baseline}")
        except BaselineError as exc:
            print(f"error: not writing {plan.write_baseline}: {exc}", file=sys.stderr)
            code = 1
        except OSError as exc:
            print(f"error: can't write baseline {plan.write_baseline}: {exc}", file=sys.stderr)
            code = 1
    if plan.baseline is not None:
        fails, notes = check(records, plan.baseline)
        for line in notes:
            print(f"note: {line}")
        for line in fails:
            print(f"REGRESSION: {line}")
        code = max(code, 1 if fails else 0, _report_compared(records, plan.baseline, fails))
    plan.manifest.update()
    print(f"results in {plan.out}")
    return code


def _report_compared(records: list[Record], baseline: dict, fails: list[str]) -> int:
    """The check's last line: regressions among how many compared entries; 1 when it compared
    none (every run of a matching entry failed or was skipped: nothing was checked)."""
    n = compared_entries(records, baseline)
    total = len(baseline["entries"])
    print(f"regression check: {len(fails)} regression(s) in {n} of {total} baseline entries")
    if n == 0:
        print("error: the regression check compared no baseline entry", file=sys.stderr)
        return 1
    return 0


def _plots(out: Path) -> int:
    from eval.plots import make_plots

    try:
        make_plots(out)
    except Exception as exc:  # the records stand; a failed plot is reported, not fatal
        print(f"warning: plots failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return _circuit_plots(out)


def _circuit_plots(out: Path) -> int:
    from eval.formats.circuit import draw_run  # each method's circuit per task, at the default size

    try:
        draw_run(out)
    except Exception as exc:
        print(f"warning: circuit plots failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    from core.registry import UnknownKeyError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    with handle_signals():
        try:
            preflight.load_plugins(args.plugin)
            if args.list:
                print(list_entries())
                return 0
            plan = make_plan(args, argv)
        except (UsageError, UnknownKeyError, BaselineError, FolderLocked) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except Interrupted as sig:  # before any work: nothing to mark or resume
            print(f"interrupted by {sig.name} before the run started", file=sys.stderr)
            return sig.exit_code
        try:
            return execute(plan)
        except Interrupted as sig:  # while finishing (summary, plots): the records are complete
            print(f"interrupted by {sig.name} while finishing; see {plan.out}", file=sys.stderr)
            return sig.exit_code
        finally:
            plan.lock.release()


if __name__ == "__main__":
    sys.exit(main())
