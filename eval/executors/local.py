"""``--executor local`` (default): one job at a time, each in a process of its own
(:func:`eval.isolate.run_isolated`), so its CPU peak memory is its own and a crash, a hang past
``--timeout`` or a kill can't take the runner with it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from eval.executors.base import Executor, Result
from eval.executors.registry import register_executor
from eval.isolate import run_isolated
from eval.worker import Job


@register_executor("local")
class LocalExecutor(Executor):
    description = "a process per job on this machine, one at a time (default)"

    def run(self, jobs: Sequence[Job], out: Path) -> Iterator[Result]:
        # A signal raised while a job runs ends run_isolated's wait, which kills the child and
        # removes its temporary folder on the way out (eval.isolate.call_in_child).
        for job in jobs:
            record, curves = run_isolated(job, out, self.options.timeout, self.options.retries)
            yield job, record, curves

    def cost_note(self) -> str:
        return "each job in a process of its own: peak_mb is the job's own CPU peak"
