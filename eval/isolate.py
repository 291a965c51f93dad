"""Run a function in a process of its own, so its peak memory is its own.

On CPU the processes are forked from a multiprocessing *forkserver* that has imported torch,
TransformerLens and the registries once (importing them costs 10-20 s, more than most jobs);
a forked child starts with the server's pages, i.e. the imports, and its ``ru_maxrss`` is its
own peak from there. On CUDA the children are spawned fresh instead, because a process must not
fork after CUDA may have been initialised. :func:`call_in_child` is the one child-process helper
(the runner's jobs and ``eval.speed``'s variants both use it); a child's stdout and stderr go to
a log file when one is given.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eval.records import (
    STATUS_TIMEOUT,
    Curves,
    Record,
    atomic_write_text,
    curves_from_dict,
    record_from_dict,
    run_name,
    to_json,
)
from eval.worker import Job, job_result

PRELOAD = [
    "eval.worker",
    "eval.scoring.evaluate",
    "patching",
    "transformer_lens",
    "tasks",
    "methods",
]
LOGS = "logs"


class ChildFailed(RuntimeError):
    """The child process ended without writing a result."""

    def __init__(self, message: str, died: bool = False) -> None:
        super().__init__(message)
        self.died = died  # killed by a signal: worth a retry (OOM killer, a lost machine)


class ChildTimeout(RuntimeError):
    """The child ran past its timeout and was killed."""


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGKILL to this child when its parent dies, so a runner killed
    hard (SIGKILL) leaves no worker writing into its folder."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the runner's signal handler still stops us
        pass


def _watch_owner(owner: int, every_s: float = 0.2) -> None:
    """End this child as soon as the process that asked for it (``owner``) is gone. Under the
    forkserver the child's parent is the server, not the runner, so PR_SET_PDEATHSIG alone
    leaves a child of a SIGKILLed runner writing into the run folder until the server notices."""
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(every_s)
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                os._exit(137)
            except PermissionError:  # a pid reused by another user's process: ours is gone
                os._exit(137)

    threading.Thread(target=watch, daemon=True, name="watch-owner").start()


def _child(
    fn: Callable[..., Any], args: tuple, result: str, log: str | None, owner: int | None = None
) -> None:
    """The child's entry: output to ``log``, ``fn(*args)``, its JSON to ``result``; it ends
    when ``owner`` (the runner's pid) does."""
    _die_with_parent()
    if owner is not None:
        _watch_owner(owner)
    if log is not None:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    atomic_write_text(result, to_json(fn(*args)))


def context(device: str, preload: Sequence[str] = PRELOAD):
    """The multiprocessing context for children on ``device``; ``preload``: modules the CPU
    forkserver imports once (used when the server first starts)."""
    if device.startswith("cuda") or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    return ctx


def _end(proc) -> None:
    """Kill ``proc`` if it still runs, and reap it."""
    if proc.is_alive():
        proc.kill()
    proc.join()


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"worker killed by {name}{hint}"
    return f"worker exited with code {code}"


def call_in_child(
    fn: Callable[..., Any],
    args: tuple,
    device: str,
    preload: Sequence[str] = PRELOAD,
    log: str | Path | None = None,
    timeout: float | None = None,
) -> Any:
    """``fn(*args)`` (a module-level function returning JSON-able data) in a process of its own;
    its return value read back from JSON. Raises :class:`ChildFailed` naming the exit reason and
    the last line of ``log`` when the child wrote no result, :class:`ChildTimeout` when it ran
    longer than ``timeout`` seconds. Whatever ends the wait (a timeout, a signal raised in this
    process), the child is killed and its temporary folder removed before this returns."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        log_arg = None if log is None else str(log)
        proc = context(device, preload).Process(
            target=_child, args=(fn, args, str(result), log_arg, os.getpid())
        )
        proc.start()
        try:
            proc.join(timeout)
            if proc.is_alive() and not result.is_file():
                raise ChildTimeout(f"no result within {timeout:g} s")
        finally:
            _end(proc)
        if result.is_file():
            return json.loads(result.read_text())
    died = proc.exitcode is not None and proc.exitcode < 0
    if log is None:
        raise ChildFailed(f"{_exit_reason(proc.exitcode)} without a result", died)
    text = Path(log).read_text(errors="replace") if Path(log).is_file() else ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    last = f"; last output: {lines[-1]}" if lines else ""
    raise ChildFailed(f"{_exit_reason(proc.exitcode)} without a result{last} (log: {log})", died)


def run_isolated(
    job: Job, out: Path, timeout: float | None = None, retries: int = 0
) -> tuple[Record, Curves]:
    """Run ``job`` in its own process, its output in ``out/logs/``, its scores and trace in
    ``out`` (eval.formats.found). A crash becomes an ``error`` record naming the log, a worker
    killed by a signal (e.g. the OOM killer) is run again up to ``retries`` times, and one running
    past ``timeout`` seconds is killed and recorded with status ``timeout: ...``."""
    (out / LOGS).mkdir(parents=True, exist_ok=True)
    log = out / LOGS / f"{run_name(job.method, job.task, job.seed)}.log"
    preload = PRELOAD + list(job.plugins)
    for attempt in range(1, retries + 2):
        try:
            data = call_in_child(
                job_result, (job.to_json(), str(out)), job.device, preload, log, timeout
            )
        except ChildTimeout as exc:
            return _failed(job, f"{STATUS_TIMEOUT}: {exc} (--timeout)")
        except ChildFailed as exc:
            if exc.died and attempt <= retries:
                continue
            note = f" (after {attempt} attempts)" if attempt > 1 else ""
            return _failed(job, f"error: {exc}{note}")
        return record_from_dict(data["record"]), curves_from_dict(data["curves"])
    raise AssertionError("unreachable")


def _failed(job: Job, status: str) -> tuple[Record, Curves]:
    record = Record(job.method, job.task, job.ablation, job.seed, status, device=job.device)
    return record, Curves(job.method, job.task, job.ablation, job.seed)
