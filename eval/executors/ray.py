"""``--executor ray``: each (method, task, seed) is a Ray task, on a local or existing cluster.

Install the extra: ``pip install -e ".[ray]"``. Without ``--address`` the runner starts a
private local Ray instance (and stops it at the end); with ``--address HOST:PORT`` (or ``auto``)
it joins a cluster started with ``ray start``. Every node needs this project installed (the
same version) and the run folder must be on a file system the driver can write: workers send
their results (record, curves, scores, trace, log) back to the driver, which writes them.

Each task declares its resources: ``num_cpus`` = ``--threads``, one GPU when ``--device cuda``,
and ``--memory-mb`` as Ray's ``memory`` (the scheduler's admission control, not a hard limit).
A task whose worker process dies (killed, out of memory, node lost) is retried ``--retries``
times by Ray (``max_retries``) and then recorded as failed. ``--timeout`` is measured from when
a task is handed to the cluster; the runner hands out at most as many tasks as the cluster has
room for (its CPUs / ``--threads``), so that is close to when it starts. A timed-out or
interrupted task is cancelled with ``force=True`` (its worker process is killed).

Ray workers run many jobs each, so a job's CPU peak memory can't be attributed (peak_mb NaN,
memory ``cpu-rss-shared``); on CUDA the allocator's peak is per job as usual.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import asdict
from pathlib import Path

from eval.executors.base import Executor, Result, failed
from eval.executors.registry import register_executor
from eval.interrupt import Interrupted, keep_signal_handlers
from eval.isolate import LOGS
from eval.records import STATUS_TIMEOUT, curves_from_dict, record_from_dict, run_name
from eval.worker import Job, Outcome, one_line, run_job, save_found

INSTALL = 'pip install -e ".[ray]"  (or: pip install "ray==2.60.*")'


def _ray():
    try:
        import ray
    except ImportError:
        raise ValueError(f"--executor ray needs Ray: {INSTALL}") from None
    return ray


def ray_job(job_json: str) -> dict:
    """The Ray task: run one job in the worker, everything it produced sent back."""
    buf = io.StringIO()
    with redirect_stdout(buf), redirect_stderr(buf):
        outcome = run_job(Job.from_json(job_json), isolated=False)
    return {
        "record": asdict(outcome.record),
        "curves": asdict(outcome.curves),
        "edges": outcome.edges,
        "scores": outcome.scores,
        "trace": outcome.trace,
        "truth": outcome.truth,
        "graph": outcome.graph,
        "d_model": outcome.d_model,
        "log": buf.getvalue(),
    }


def _wait(ray, refs: list, timeout: float) -> list:
    """``ray.wait`` for one ready result; a signal handled inside Ray's Cython wait surfaces as a
    SystemError whose context is our Interrupted: re-raise that."""
    try:
        return ray.wait(refs, num_returns=1, timeout=timeout)[0]
    except SystemError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, Interrupted):
            raise cause from None
        raise


@register_executor("ray")
class RayExecutor(Executor):
    description = "a Ray task per job, on a private local Ray instance or --address's cluster"

    def __init__(self, options) -> None:
        super().__init__(options)
        self._running: dict = {}  # ObjectRef -> (job, time handed out)
        self._started_ray = False

    def check(self) -> None:
        super().check()
        _ray()
        if self.options.memory_mb is not None and self.options.memory_mb < 1:
            raise ValueError(f"--memory-mb must be at least 1, got {self.options.memory_mb}")

    def _connect(self):
        ray = _ray()
        if not ray.is_initialized():
            with keep_signal_handlers():  # ray.init installs its own SIGTERM handler
                ray.init(
                    address=self.options.address,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            self._started_ray = True
        return ray

    def _remote(self, ray, job: Job):
        opts = dict(num_cpus=job.threads, max_retries=self.options.retries, retry_exceptions=False)
        if job.device.startswith("cuda"):
            opts["num_gpus"] = 1
        if self.options.memory_mb is not None:
            opts["memory"] = self.options.memory_mb * 2**20
        return ray.remote(ray_job).options(**opts)

    def _slots(self, ray, jobs: Sequence[Job]) -> int:
        cpus = ray.cluster_resources().get("CPU", 1)
        per_job = max(1, jobs[0].threads) if jobs else 1
        return max(1, int(cpus // per_job))

    def run(self, jobs: Sequence[Job], out: Path) -> Iterator[Result]:
        ray = self._connect()
        try:
            yield from self._run(ray, list(jobs), out)
        finally:
            self.stop()

    def _run(self, ray, pending: list[Job], out: Path) -> Iterator[Result]:
        slots, timeout = self._slots(ray, pending), self.options.timeout
        pending.reverse()  # pop() from the end hands jobs out in plan order
        while pending or self._running:
            while pending and len(self._running) < slots:
                job = pending.pop()
                ref = self._remote(ray, job).remote(job.to_json())
                self._running[ref] = (job, time.monotonic())
            wait_s = 1.0  # short waits: SIGINT/SIGTERM are handled between them
            if timeout is not None:
                first = min(t for _, t in self._running.values())
                wait_s = min(wait_s, max(0.0, first + timeout - time.monotonic()))
            ready = _wait(ray, list(self._running), wait_s)
            for ref in ready:
                job, _ = self._running.pop(ref)
                yield self._result(ray, ref, job, out)
            if timeout is not None:
                now = time.monotonic()
                for ref, (job, t0) in list(self._running.items()):
                    if now - t0 >= timeout:
                        ray.cancel(ref, force=True)
                        del self._running[ref]
                        yield failed(
                            job, f"{STATUS_TIMEOUT}: no result within {timeout:g} s (--timeout)"
                        )

    def _result(self, ray, ref, job: Job, out: Path) -> Result:
        try:
            data = ray.get(ref)
        except ray.exceptions.RayError as exc:  # the worker died more often than --retries
            attempts = self.options.retries + 1
            return failed(
                job, f"error: Ray worker lost ({one_line(exc)}) after {attempts} attempt(s)"
            )
        (out / LOGS).mkdir(parents=True, exist_ok=True)
        log = out / LOGS / f"{run_name(job.method, job.task, job.seed)}.log"
        log.write_text(data["log"])
        outcome = Outcome(
            record_from_dict(data["record"]),
            curves_from_dict(data["curves"]),
            data["edges"],
            data["scores"],
            data["trace"],
            truth=data["truth"],
            graph=data["graph"],
            d_model=data["d_model"],
        )
        save_found(job, out, outcome)
        return job, outcome.record, outcome.curves

    def stop(self) -> None:
        if self._running:
            ray = _ray()
            for ref in self._running:
                ray.cancel(ref, force=True)
            self._running.clear()
        if self._started_ray:
            _ray().shutdown()
            self._started_ray = False

    def cost_note(self) -> str:
        return "Ray workers run many jobs: CPU peak_mb not attributable (NaN)"
