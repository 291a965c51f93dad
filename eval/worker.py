"""Run one (method, task, seed): problem -> method -> evaluate -> record, and save what it found.

The order matters for a fair benchmark: the method sees only a ``Problem`` (model, data,
ablation, metric; :func:`tasks.problem.build_problem`); the ground truth is read after the
method has returned, by the evaluator. :func:`run_and_save` is the one path of a job, in the
runner's process (``--inline``) or in a child process of its own (:mod:`eval.isolate`, whose
child calls :func:`job_result`).
"""

from __future__ import annotations

import importlib
import json
import math
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from eval.formats.circuits import save_run_circuits
from eval.formats.found import trace_dict, trace_summary, write_found
from eval.formats.mib import export_run
from eval.records import Curves, Record
from eval.scoring.converged import converged
from eval.scoring.cost import MemoryProbe, timed
from eval.scoring.evaluate import Evaluation, evaluate
from tasks.problem import UnsupportedGraphError, build_problem
from tasks.splits import build_heldout


@dataclass(frozen=True)
class Job:
    """One unit of work, fully resolved by the runner's plan (no defaults left to look up).

    ablation: the concrete ablation kind (the plan resolves a task's default); n: examples.
    """

    method: str
    task: str
    seed: int
    ablation: str
    n: int
    device: str = "cpu"
    plugins: tuple[str, ...] = field(default_factory=tuple)
    threads: int = 1
    task_spec: dict | None = None  # a task read from a file (tasks.file_task.FileTaskSpec)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        d = json.loads(text)
        d["plugins"] = tuple(d.get("plugins", ()))
        return cls(**d)


@dataclass
class Outcome:
    """A job's record and curves, and what the method found (None/empty when it did not return)."""

    record: Record
    curves: Curves
    edges: list[str] = field(default_factory=list)
    scores: Tensor | None = None
    trace: dict[str, Any] = field(default_factory=dict)
    truth: Any = None  # boolean ground-truth mask over ``edges`` (eval.formats.circuits writes it)
    graph: Any = None  # the run's EdgeGraph and the model's width (for the MIB export)
    d_model: int | None = None


def import_plugins(plugins) -> None:
    """Import modules that register extra tasks or methods (e.g. test-only entries)."""
    for name in plugins:
        importlib.import_module(name)


def one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ").strip()
    return text if len(text) <= 500 else text[:497] + "..."


def score(record: Record, curves: Curves, ev: Evaluation) -> None:
    """Put the evaluator's measures into the record (scalars) and the curves (lists)."""
    record.auc, record.ap, record.precision_at_k = ev.auc, ev.ap, ev.precision_at_k
    record.cpr, record.cmd, record.cpr_log, record.cmd_log = ev.cpr, ev.cmd, ev.cpr_log, ev.cmd_log
    record.metric_clean, record.metric_ablated = ev.metric_clean, ev.metric_ablated
    curves.fpr, curves.tpr = ev.fpr, ev.tpr
    curves.fractions, curves.n_kept, curves.faithfulness = ev.fractions, ev.n_kept, ev.faithfulness
    record.overshoot, record.auc_pareto = ev.overshoot, ev.auc_pareto
    record.auroc_mib = ev.auroc_mib
    curves.n_in_graph, curves.faithfulness_abs = ev.n_in_graph, ev.faithfulness_abs


def run_job(job: Job, isolated: bool = True) -> Outcome:
    """Run ``job``; never raises for a failing task or method (the record's status says why)."""
    record = Record(job.method, job.task, job.ablation, job.seed, n=job.n, device=job.device)
    record.torch_version = torch.__version__
    outcome = Outcome(record, Curves(job.method, job.task, job.ablation, job.seed))
    torch.set_num_threads(job.threads)
    try:
        import_plugins(job.plugins)
        if job.task_spec is not None:  # a task configured by the runner: register it here too
            from tasks.configured import ensure_configured, is_configured_spec
            from tasks.file_task import ensure_file_task

            ensure = ensure_configured if is_configured_spec(job.task_spec) else ensure_file_task
            ensure(job.task_spec)
        _run(job, outcome, isolated)
    except UnsupportedGraphError as exc:  # e.g. no per-position ground truth for this task
        record.status = f"skipped: {one_line(exc.__cause__ or exc)}"  # the task's own words
    except (Exception, SystemExit) as exc:  # a failing method is a result, not a crash of
        traceback.print_exc()  # the run (SystemExit too: sys.exit in a method, D11)
        record.status = f"error: {one_line(exc)}"
    return outcome


def _run(job: Job, out: Outcome, isolated: bool) -> None:
    from methods.base import get_method
    from tasks.base import get_task

    task, method = get_task(job.task), get_method(job.method, seed=job.seed)
    rec = out.record
    rec.signed = bool(type(method).signed)
    problem = build_problem(task, method.graph, job.n, job.seed, job.ablation, job.device)
    graph = problem.model.graph
    rec.n_edges, out.edges = graph.n_edges, list(graph.edge_names)

    probe = MemoryProbe(job.device, isolated)
    rec.memory, rec.start_mb = probe.kind, probe.start()
    scores, rec.seconds = timed(lambda: method(problem), job.device)  # checks the signal if needed
    rec.peak_mb = probe.peak()
    out.scores, out.trace = scores, trace_dict(method.trace)
    out.graph, out.d_model = graph, problem.model.cfg.d_model  # for the MIB export
    rec.steps, rec.stopped_early, rec.final_loss = trace_summary(out.trace)
    rec.completeness_gap = float(out.trace.get("completeness_gap", math.nan))
    rec.converged = converged(rec.final_loss)

    truth = None  # a task without ground truth is faithfulness-only; the note says why
    if task.has_ground_truth:
        truth = graph.edge_mask(task.ground_truth(graph, job.ablation)).bool().numpy()
        rec.n_true_edges = int(truth.sum())
        if rec.n_true_edges == 0:  # every score would be "right": AUC undefined, not a result (D10)
            raise ValueError(f"task {job.task!r} has an empty ground truth under {job.ablation!r}")
    else:
        rec.note = task.no_truth_note or "the task has no ground truth: edge recovery not scored"
    out.truth = truth  # the evaluator's and the circuit files' only
    heldout = build_heldout(task, problem, job.ablation)  # faithfulness on unseen examples
    rec.n_heldout = heldout.data.n
    swept = bool(getattr(type(method), "threshold_swept", False))
    ev, rec.eval_seconds = timed(
        lambda: evaluate(
            heldout,
            scores.numpy(),
            truth,
            rec.signed,
            threshold_swept=swept,
            signed_recovery=method.signed_recovery,
        ),
        job.device,
    )
    score(rec, out.curves, ev)


def run_and_save(job: Job, out: str | Path, isolated: bool) -> tuple[Record, Curves]:
    """Run ``job`` and write its scores and trace into the run folder ``out``
    (eval.formats.found)."""
    outcome = run_job(job, isolated)
    save_found(job, out, outcome)
    return outcome.record, outcome.curves


def save_found(job: Job, out: str | Path, outcome: Outcome) -> None:
    """Write what ``outcome``'s method found into the run folder ``out`` (eval.formats.found)."""
    if outcome.scores is not None:
        try:
            write_found(
                out, job.method, job.task, job.seed, outcome.edges, outcome.scores, outcome.trace
            )
        except Exception as exc:  # the measures stand; the record says what was not kept
            traceback.print_exc()
            outcome.record.status = f"error: scores or trace not saved: {one_line(exc)}"
        try:
            export_run(  # eval.formats.mib: the scores as an MIB circuit file, its circuit marked
                out,
                job.method,
                job.task,
                job.seed,
                outcome.graph,
                outcome.d_model,
                outcome.scores,
                outcome.trace,
                outcome.truth,
                outcome.record.signed,
            )
        except Exception as exc:
            traceback.print_exc()
            if outcome.record.ok:  # keep an earlier error (NaN scores fail the evaluator too)
                outcome.record.status = f"error: MIB file not written: {one_line(exc)}"
        try:
            save_run_circuits(out, job, outcome)
        except Exception as exc:
            traceback.print_exc()
            outcome.record.status = f"error: circuits not saved: {one_line(exc)}"


def job_result(job_json: str, out: str) -> dict:
    """The child process's entry (eval.isolate): run a job, its record and curves as JSON."""
    record, curves = run_and_save(Job.from_json(job_json), out, isolated=True)
    return {"record": asdict(record), "curves": asdict(curves)}
