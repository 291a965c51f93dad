"""What an executor is: something that runs the plan's jobs and yields each result as it ends.

An executor gets every job up front (:meth:`Executor.run` is a generator) so that one with many
workers (Ray) can run them in parallel; the runner writes records after each yielded result, so
results stream into the run folder in the order they finish. :meth:`Executor.stop` ends every
running worker (the runner calls it on SIGINT/SIGTERM and on any error), and a job that is
never yielded has no record: ``--resume`` reruns it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from eval.records import Curves, Record
from eval.worker import Job

Result = tuple[Job, Record, Curves]


@dataclass(frozen=True)
class ExecOptions:
    """How to run jobs (from ``eval.run``'s flags).

    timeout: seconds one job may take (None: no limit); the job is then stopped and recorded
        with status ``timeout: ...``. retries: how often a job whose worker died (killed, out of
        memory, a lost node) is run again before it is recorded as failed. memory_mb: memory a
        job declares to a scheduler (Ray); None: none declared. address: an existing cluster.
        workers: jobs run at a time by ``--executor pool``.
    """

    timeout: float | None = None
    retries: int = 1
    memory_mb: int | None = None
    address: str | None = None
    workers: int = 1  # --executor pool: jobs at a time


class Executor(ABC):
    """Runs jobs; subclasses register with ``@register_executor("name")``."""

    key: ClassVar[str]
    description: ClassVar[str] = ""
    supports_timeout: ClassVar[bool] = True

    def __init__(self, options: ExecOptions) -> None:
        self.options = options

    def check(self) -> None:
        """Raise ValueError when this executor can't run with these options (before any work)."""
        if self.options.timeout is not None and not self.supports_timeout:
            raise ValueError(f"--timeout needs a process per job; --executor {self.key} has none")

    @abstractmethod
    def run(self, jobs: Sequence[Job], out: Path) -> Iterator[Result]:
        """Run ``jobs`` (results into ``out``); yield ``(job, record, curves)`` as each ends."""

    def stop(self) -> None:  # noqa: B027  (default: nothing runs outside this process)
        """End every running worker now (idempotent)."""

    def cost_note(self) -> str:
        """What the cost columns measure under this executor (for run.json)."""
        return ""


def failed(job: Job, status: str) -> Result:
    """The result of a job that produced none (its worker died, timed out, ...)."""
    record = Record(job.method, job.task, job.ablation, job.seed, status, device=job.device)
    return job, record, Curves(job.method, job.task, job.ablation, job.seed)
