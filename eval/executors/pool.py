"""``--executor pool --workers N``: a process per job like ``local``, ``N`` of them at a time.

On a machine with several cores and small models (the offline tasks run each job on one thread)
this divides the wall time of a run by up to ``N``; every job's peak memory is still its own
process's. Wall seconds are then measured while ``N - 1`` other jobs share the machine, so
compare them within a run, not with a ``local`` run's.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from eval.executors.base import Executor, Result, failed
from eval.executors.registry import register_executor
from eval.isolate import run_isolated
from eval.worker import Job

POLL_S = 0.2  # how often the runner's thread wakes up (so a signal is handled promptly)


@register_executor("pool")
class PoolExecutor(Executor):
    description = "a process per job on this machine, --workers of them at a time"

    def __init__(self, options) -> None:
        super().__init__(options)
        self._stopping = threading.Event()

    def check(self) -> None:
        super().check()
        if self.options.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.options.workers}")

    def run(self, jobs: Sequence[Job], out: Path) -> Iterator[Result]:
        todo: queue.SimpleQueue[Job] = queue.SimpleQueue()
        for job in jobs:
            todo.put(job)
        done: queue.SimpleQueue[Result] = queue.SimpleQueue()

        def work() -> None:
            while not self._stopping.is_set():
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    record, curves = run_isolated(
                        job, out, self.options.timeout, self.options.retries
                    )
                    done.put((job, record, curves))
                except Exception as exc:  # noqa: BLE001  (a job's failure is its record)
                    done.put(failed(job, f"error: {type(exc).__name__}: {exc}"))

        # daemon threads: a runner that stops (a signal) does not wait for them; stop() ends
        # their children, whose jobs then have no record and --resume reruns them
        threads = [
            threading.Thread(target=work, daemon=True, name=f"pool-{i}")
            for i in range(min(self.options.workers, len(jobs)))
        ]
        for t in threads:
            t.start()
        received = 0
        while received < len(jobs):
            try:
                yield done.get(timeout=POLL_S)
                received += 1
            except queue.Empty:
                if not any(t.is_alive() for t in threads) and done.empty():
                    return

    def stop(self) -> None:
        self._stopping.set()
        for child in multiprocessing.active_children():
            child.terminate()

    def cost_note(self) -> str:
        return (
            f"each job in a process of its own, {self.options.workers} at a time: peak_mb is the "
            "job's own CPU peak; seconds are measured beside the other running jobs"
        )
