"""Run each job in a process of its own, so its peak memory is its own.

On CPU the processes are forked from a multiprocessing *forkserver* that has imported torch,
TransformerLens and the registries once (importing them costs 10-20 s, more than most jobs);
a forked child starts with the server's pages, i.e. the imports, and its ``ru_maxrss`` is its
own peak from there. On CUDA the children are spawned fresh instead, because a process must not
fork after CUDA may have been initialised. Each child's stdout and stderr go to a log file.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import tempfile
from pathlib import Path

from eval.records import (
    Curves,
    Record,
    atomic_write_text,
    curves_from_dict,
    record_from_dict,
    to_json,
)
from eval.worker import Job, run_job

PRELOAD = ["eval.worker", "eval.evaluate", "patching", "transformer_lens", "tasks", "methods"]


def _child(job_json: str, result: str, log: str) -> None:
    """The child's entry: output to ``log``, run the job, write the result file."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    from dataclasses import asdict

    record, curves = run_job(Job.from_json(job_json), isolated=True)
    atomic_write_text(result, to_json({"record": asdict(record), "curves": asdict(curves)}))


def context(device: str, plugins=()):
    """The multiprocessing context for jobs on ``device``; ``plugins``: more modules to preload."""
    if device.startswith("cuda") or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD + list(plugins))  # used when the server first starts
    return ctx


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"worker killed by {name}{hint}"
    return f"worker exited with code {code}"


def run_isolated(job: Job, log_dir: Path) -> tuple[Record, Curves]:
    """Run ``job`` in its own process; a crash becomes an ``error`` record naming the log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{job.method}__{job.task}__seed{job.seed}.log"
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        proc = context(job.device, job.plugins).Process(
            target=_child, args=(job.to_json(), str(result), str(log))
        )
        proc.start()
        proc.join()
        if result.is_file():
            data = json.loads(result.read_text())
            return record_from_dict(data["record"]), curves_from_dict(data["curves"])
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    last = f"; last output: {lines[-1]}" if lines else ""
    status = f"error: {_exit_reason(proc.exitcode)} without a result{last} (log: {log})"
    abl = job.ablation or ""
    record = Record(job.method, job.task, abl, job.seed, status=status, device=job.device)
    return record, Curves(job.method, job.task, abl, job.seed)
