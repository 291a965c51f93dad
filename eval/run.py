"""The benchmark runner: every method on every task for every seed, scored and recorded.

    python -m eval.run --methods all --tasks all --seeds 3 --device cpu --out DIR
    python -m eval.run --list
    python -m eval.run --methods ipd,eap --tasks ioi --check results/baseline.json

Each (method, task, seed) runs in its own process (eval.isolate), so its CPU peak memory is its
own. Results go to ``DIR`` (default ``results/runs/<timestamp>/``): records.csv,
curves.json, run.json, summary.md, plots/, logs/ (each worker's output), and scores/ and
traces/ (what each run found, eval.found); the README's "Output" section lists the columns.

Exit codes: 0 all ran; 1 a method or task failed, a plot failed, or ``--check`` found a
regression; 2 bad input (unknown name, ``--seeds 0``, unwritable folder, bad baseline), before any
record is written.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from eval.baseline import BaselineError, build_baseline, check, load_baseline, write_baseline
from eval.isolate import run_isolated
from eval.records import RECORDS, RUN_INFO, Curves, Record, atomic_write_text, to_json, write_run
from eval.summary import machine_info, write_summary
from eval.worker import Job, import_plugins, run_and_save

ABLATION_CHOICES = (
    "resample",
    "mean",
    "zero",
)  # patching.ablation.ABLATION_KINDS (checked in tests)


class UsageError(ValueError):
    """Bad command-line input: reported with exit code 2 before anything runs."""


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
    inline: bool = False
    plots: bool = True
    baseline: dict | None = None
    write_baseline: str | None = None
    command: str = ""
    jobs: list[Job] = field(default_factory=list)


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
        help="run in this process (faster start; CPU peak memory not measured)",
    )
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


def prepare_out(out: str | None, overwrite: bool) -> Path:
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
    if (path / RECORDS).exists() and not overwrite:
        raise UsageError(
            f"{path} already holds a run ({RECORDS}); pass --overwrite or another --out"
        )
    return path


def make_plan(args: argparse.Namespace, argv: list[str]) -> Plan:
    """Validate every input and resolve keys (UsageError, UnknownKeyError, BaselineError)."""
    if args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    if args.n is not None and args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}")
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
    skipped, ablations, ns = {}, {}, {}
    for key in task_keys:
        task = tasks.get(key)()
        ablations[key] = args.ablation or task.default_ablation
        ns[key] = args.n or task.n_default()
        if ns[key] > task.max_train() and task.unavailable_reason() is None:
            raise UsageError(
                f"--n {ns[key]}: task {key!r} gives at most {task.max_train()} train examples"
            )
        reason = task.unavailable_reason()
        if reason is None and ablations[key] not in task.ablations:
            has = ", ".join(task.ablations)
            reason = f"no ground truth under {ablations[key]} ablation (has: {has})"
        if reason:
            skipped[key] = reason
    plan = Plan(
        method_keys,
        task_keys,
        skipped,
        ablations,
        ns,
        args.seeds,
        device,
        out=prepare_out(args.out, args.overwrite),
        plugins=tuple(args.plugin),
        inline=args.inline,
        plots=not args.no_plots,
        baseline=baseline,
        write_baseline=args.write_baseline,
        command="python -m eval.run " + shlex.join(argv),
    )
    plan.jobs = [
        Job(m, t, s, ablations[t], ns[t], device, plan.plugins, args.threads, file_specs.get(t))
        for t in task_keys
        if t not in skipped
        for m in method_keys
        for s in range(args.seeds)
    ]
    return plan


def execute(plan: Plan) -> int:
    """Run the plan, writing records after every run; the exit code (0 or 1)."""
    from tqdm import tqdm

    info = {
        "command": plan.command,
        "machine": machine_info(plan.device),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(plan.out / RUN_INFO, to_json(info))
    records: list[Record] = []
    curves: list[Curves] = []
    for task, reason in plan.skipped.items():
        print(f"skip task {task}: {reason}", file=sys.stderr)
        records += [
            Record(
                m, task, plan.ablations[task], s, status=f"skipped: {reason}", device=plan.device
            )
            for m in plan.methods
            for s in range(plan.seeds)
        ]
    write_run(plan.out, records, curves)
    with tqdm(plan.jobs, desc="runs", unit="run", file=sys.stderr) as bar:
        for job in bar:
            bar.set_postfix_str(f"{job.method} on {job.task}, seed {job.seed}")
            rec, cur = (
                run_and_save(job, plan.out, isolated=False)
                if plan.inline
                else run_isolated(job, plan.out)
            )
            records.append(rec)
            if rec.ok:
                curves.append(cur)
            else:
                tqdm.write(
                    f"{job.method} on {job.task} seed {job.seed}: {rec.status}", file=sys.stderr
                )
            write_run(plan.out, records, curves)
    return finish(plan, records, info)


def finish(plan: Plan, records: list[Record], info: dict) -> int:
    """Summary, plots, baseline and the regression check; the exit code."""
    code = 0
    failed = [r for r in records if not r.ok and not r.status.startswith("skipped")]
    if failed:
        print(f"{len(failed)} of {len(records)} runs failed (see summary.md)", file=sys.stderr)
        code = 1
    info["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_text(plan.out / RUN_INFO, to_json(info))
    write_summary(plan.out, records, info)
    if plan.plots:
        code = max(code, _plots(plan.out))
    if plan.write_baseline:
        try:
            write_baseline(plan.write_baseline, build_baseline(records, source=str(plan.out)))
            print(f"wrote baseline {plan.write_baseline}")
        except OSError as exc:
            print(f"error: can't write baseline {plan.write_baseline}: {exc}", file=sys.stderr)
            code = 1
    if plan.baseline is not None:
        fails, notes = check(records, plan.baseline)
        for line in notes:
            print(f"note: {line}")
        for line in fails:
            print(f"REGRESSION: {line}")
        print(f"regression check: {len(fails)} regression(s)")
        code = max(code, 1 if fails else 0)
    print(f"results in {plan.out}")
    return code


def _plots(out: Path) -> int:
    from eval.plots import make_plots

    try:
        make_plots(out)
    except Exception as exc:  # the records stand; a failed plot is reported, not fatal
        print(f"warning: plots failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return _circuit_plots(out)


def _circuit_plots(out: Path) -> int:
    from eval.circuit import draw_run  # each method's circuit per task, at the default size

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
    try:
        import_plugins(args.plugin)
        if args.list:
            print(list_entries())
            return 0
        plan = make_plan(args, argv)
    except (UsageError, UnknownKeyError, BaselineError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return execute(plan)


if __name__ == "__main__":
    sys.exit(main())
