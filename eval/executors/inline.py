"""``--executor inline`` (old ``--inline``): every job in the runner's own process. Fastest to
start (no process, no imports per job) and easiest to debug, but a crash ends the run, CPU peak
memory can't be attributed (NaN), and there is no ``--timeout``. A method calling ``sys.exit``
is recorded as failed like any other error (eval.worker.run_job catches SystemExit)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from eval.executors.base import Executor, Result
from eval.executors.registry import register_executor
from eval.worker import Job, run_and_save


@register_executor("inline")
class InlineExecutor(Executor):
    description = "in the runner's process (fast start; no timeout, CPU peak memory not measured)"
    supports_timeout = False

    def run(self, jobs: Sequence[Job], out: Path) -> Iterator[Result]:
        for job in jobs:
            record, curves = run_and_save(job, out, isolated=False)
            yield job, record, curves

    def cost_note(self) -> str:
        return "all jobs in the runner's process: CPU peak_mb not attributable (NaN)"
