"""Run one (method, task, seed) and score it; ``python -m eval.worker`` runs one in its own process.

The order matters for a fair benchmark: the method sees only a ``Problem`` (model, data,
ablation, metric); the ground truth is read after the method has returned, by the evaluator.

    python -m eval.worker --job '{"method": "eap", "task": "ioi", "seed": 0, ...}' --result R.json

writes ``{"record": ..., "curves": ...}`` to ``R.json`` (atomically) and exits 0, also when the
method fails (the record's status then says why).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
from dataclasses import asdict, dataclass, field

import torch

from eval.cost import MemoryProbe, timed
from eval.evaluate import evaluate
from eval.records import Curves, Record, atomic_write_text, to_json


@dataclass(frozen=True)
class Job:
    """One unit of work. ``n``/``ablation`` None: the task's ``default_n``/``default_ablation``."""

    method: str
    task: str
    seed: int
    device: str = "cpu"
    n: int | None = None
    ablation: str | None = None
    plugins: tuple[str, ...] = field(default_factory=tuple)
    threads: int = 1

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        d = json.loads(text)
        d["plugins"] = tuple(d.get("plugins", ()))
        return cls(**d)


def import_plugins(plugins) -> None:
    """Import modules that register extra tasks or methods (e.g. test-only entries)."""
    for name in plugins:
        importlib.import_module(name)


def one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ").strip()
    return text if len(text) <= 500 else text[:497] + "..."


def run_job(job: Job, isolated: bool = True) -> tuple[Record, Curves]:
    """Run ``job``; never raises for a failing task or method (the record's status says why)."""
    from methods.base import get_method
    from tasks.base import get_task

    record = Record(job.method, job.task, job.ablation or "", job.seed, device=job.device)
    record.torch_version = torch.__version__
    curves = Curves(job.method, job.task, record.ablation, job.seed)
    torch.set_num_threads(job.threads)
    try:
        import_plugins(job.plugins)
        task = get_task(job.task)
        method = get_method(job.method, seed=job.seed)
        record.ablation = curves.ablation = job.ablation or task.default_ablation
        _run(job, task, method, record, curves, isolated)
    except Exception as exc:  # a failing method is a result, not a crash of the run
        traceback.print_exc()
        record.status = f"error: {one_line(exc)}"
    return record, curves


def _run(job: Job, task, method, record: Record, curves: Curves, isolated: bool) -> None:
    from methods.base import Problem
    from patching import PatchableModel

    record.n = job.n or task.default_n
    record.signed = bool(type(method).signed)
    data = task.make_data(record.n, job.seed).to(job.device)
    config = method.graph.config(data.clean.shape[1])  # the graph the method works on
    try:
        task.check_graph(config)
    except ValueError as exc:  # e.g. no per-position ground truth for this task
        record.status = f"skipped: {one_line(exc)}"
        return
    pm = PatchableModel(task.load_model(job.device), config)
    problem = Problem.from_task(task, pm, data, record.ablation)
    problem.check_signal()
    record.n_edges = pm.graph.n_edges

    probe = MemoryProbe(job.device, isolated)
    record.memory = probe.kind
    record.base_mb = probe.start()
    scores, record.seconds = timed(lambda: method(problem), job.device)
    record.peak_mb = probe.peak()

    truth_names = task.ground_truth(pm.graph, record.ablation)  # only the evaluator reads it
    truth = pm.graph.edge_mask(truth_names).bool().numpy()
    record.n_true_edges = int(truth.sum())
    ev, record.eval_seconds = timed(
        lambda: evaluate(problem, scores.numpy(), truth, record.signed), job.device
    )
    for name in ("auc", "ap", "precision_at_k", "cpr", "cmd", "cpr_log", "cmd_log"):
        setattr(record, name, getattr(ev, name))
    record.metric_clean, record.metric_ablated = ev.metric_clean, ev.metric_ablated
    curves.fpr, curves.tpr = ev.fpr, ev.tpr
    curves.fractions, curves.n_kept, curves.faithfulness = ev.fractions, ev.n_kept, ev.faithfulness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one (method, task, seed) of eval.run.")
    parser.add_argument("--job", required=True, help="the job as JSON (eval.worker.Job)")
    parser.add_argument("--result", required=True, help="where to write the result JSON")
    args = parser.parse_args(argv)
    record, curves = run_job(Job.from_json(args.job), isolated=True)
    atomic_write_text(args.result, to_json({"record": asdict(record), "curves": asdict(curves)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
