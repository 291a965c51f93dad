"""The circuits a run found: its top-ranked edges at each evaluated size, pruned of dangling edges.

In a run folder, beside ``scores/`` (:mod:`eval.formats.found`), each run that produced scores has
``circuits/<run>.json`` (``<run>`` = ``<method>__<task>__seed<s>``,
:func:`eval.records.run_name`)::

    {"method": "ipd", "task": "induction", "seed": 0, "ablation": "resample", "signed": false,
     "n_edges": 1234,                       # edges in the graph
     "ground_truth": ["embed->a0.h1.v", ...] or null (the task has none),
     "circuits": [{"fraction": 0.001, "n_top": 2, "edges": ["a1.h6->logits", ...]}, ...]}

``n_top`` is how many top-ranked edges the evaluator keeps at ``fraction``
(:func:`eval.scoring.metrics.circuit_masks`, the size rule the faithfulness curve uses); ``edges``
are those left after :func:`patching.prune.prune_dangling` removes the ones on no path from the
input to the logits (MIB's rule), most important first. A :class:`Circuit` of any size (a
fraction, or a number of top edges) is rebuilt from the stored scores with the same helpers,
so ``python -m eval.formats.circuit`` (:mod:`eval.formats.circuit`) and this file always agree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.formats.found import read_scores
from eval.records import atomic_write_text, read_records, run_name, to_json
from eval.scoring import metrics
from patching.prune import prune_dangling

CIRCUITS = "circuits"


@dataclass(frozen=True)
class Circuit:
    """One circuit of a run: kept edges (most important first) with their scores.

    ``label`` says how its size was chosen (``5%`` or ``40 edges``); ``n_top`` is the number of
    top-ranked edges before dangling edges were pruned; ``truth`` the task's ground-truth edge
    names (None when the task has none); ``graph_edges`` every edge of the graph, so a drawing
    can place every node of the model.
    """

    method: str
    task: str
    seed: int
    label: str
    n_top: int
    edges: tuple[str, ...]
    scores: tuple[float, ...]
    signed: bool
    truth: frozenset[str] | None
    graph_edges: tuple[str, ...]

    @property
    def title(self) -> str:
        return f"{self.method} on {self.task}, seed {self.seed}"

    @property
    def size_note(self) -> str:
        """How the circuit was cut: ``top 5% of 81 edges = 5, 4 after pruning dangling edges``
        or ``top 6 of 81 edges, 5 after pruning dangling edges``."""
        n = len(self.graph_edges)
        if self.label.endswith("edges"):
            top = f"top {self.n_top} of {n} edges"
        else:
            top = f"top {self.label} of {n} edges = {self.n_top}"
        return f"{top}, {len(self.edges)} after pruning dangling edges"

    def marks(self) -> dict[str, str]:
        """``TP`` or ``FP`` for each kept edge against the ground truth (empty without one)."""
        if self.truth is None:
            return {}
        return {e: "TP" if e in self.truth else "FP" for e in self.edges}

    def missed(self) -> list[str]:
        """Ground-truth edges not in the circuit, in graph order (empty without a truth)."""
        if self.truth is None:
            return []
        kept = set(self.edges)
        return [e for e in self.graph_edges if e in self.truth and e not in kept]


def pruned_masks(
    edge_names: Sequence[str], scores, fractions: Sequence[float], signed: bool
) -> np.ndarray:
    """``[len(fractions), n_edges]``: the evaluator's top-``fraction`` masks, dangling edges
    pruned."""
    masks = metrics.circuit_masks(np.asarray(scores, dtype=np.float64), fractions, signed)
    return prune_dangling(list(edge_names), masks)


def top_edges_mask(edge_names: Sequence[str], scores, n: int, signed: bool) -> np.ndarray:
    """The top ``n`` edges of the evaluator's ranking (:func:`eval.scoring.metrics.ranking`),
    pruned."""
    order = metrics.ranking(np.asarray(scores, dtype=np.float64), signed)
    if not 1 <= n <= order.size:
        raise ValueError(f"the number of edges must be in 1..{order.size}, got {n}")
    mask = np.zeros(order.size, dtype=bool)
    mask[order[:n]] = True
    return prune_dangling(list(edge_names), mask)


def ranked(edge_names: Sequence[str], scores, mask: np.ndarray, signed: bool) -> list[int]:
    """Indices of the edges in ``mask``, most important first (the evaluator's ranking)."""
    order = metrics.ranking(np.asarray(scores, dtype=np.float64), signed)
    return [int(i) for i in order if mask[i]]


def circuits_dict(
    method: str,
    task: str,
    seed: int,
    ablation: str,
    signed: bool,
    edge_names: Sequence[str],
    scores,
    fractions: Sequence[float],
    truth: np.ndarray | None,
) -> dict:
    """The content of ``circuits/<run>.json`` (see the module docstring); ``truth`` is the
    boolean ground-truth mask over ``edge_names`` or None."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(edge_names),):
        raise ValueError(f"{len(edge_names)} edge names for scores of shape {scores.shape}")
    fractions = list(fractions)
    masks = pruned_masks(edge_names, scores, fractions, signed)
    n_top = metrics.circuit_masks(scores, fractions, signed).sum(1)
    circuits = [
        {
            "fraction": f,
            "n_top": int(k),
            "edges": [edge_names[i] for i in ranked(edge_names, scores, mask, signed)],
        }
        for f, k, mask in zip(fractions, n_top, masks, strict=True)
    ]
    has_truth = truth is not None and bool(np.asarray(truth).any())
    return {
        "method": method,
        "task": task,
        "seed": seed,
        "ablation": ablation,
        "signed": bool(signed),
        "n_edges": len(edge_names),
        "ground_truth": (
            [e for e, t in zip(edge_names, np.asarray(truth), strict=True) if t]
            if has_truth
            else None
        ),
        "circuits": circuits,
    }


def save_run_circuits(folder: str | Path, job, outcome) -> Path:
    """Write the circuits of one finished job (:class:`eval.worker.Job` and ``Outcome``) at the
    sizes it was evaluated at (every size of :data:`eval.scoring.metrics.FRACTIONS` if it got no
    further than the method)."""
    content = circuits_dict(
        job.method,
        job.task,
        job.seed,
        job.ablation,
        outcome.record.signed,
        outcome.edges,
        outcome.scores.detach().double().cpu().numpy(),
        outcome.curves.fractions or metrics.FRACTIONS,
        outcome.truth,
    )
    return write_circuits(folder, content)


def circuits_path(folder: str | Path, method: str, task: str, seed: int) -> Path:
    return Path(folder) / CIRCUITS / f"{run_name(method, task, seed)}.json"


def write_circuits(folder: str | Path, content: dict) -> Path:
    """Write :func:`circuits_dict`'s ``content`` to ``circuits/<run>.json`` (atomically)."""
    path = circuits_path(folder, content["method"], content["task"], content["seed"])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, to_json(content))
    return path


def read_circuits(folder: str | Path, method: str, task: str, seed: int) -> dict:
    """One run's ``circuits/<run>.json``; FileNotFoundError when the run wrote none."""
    path = circuits_path(folder, method, task, seed)
    if not path.is_file():
        raise FileNotFoundError(f"no circuits file {path.name} in {Path(folder) / CIRCUITS}")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CircuitError(f"{path} is damaged (not JSON: {exc}); delete it or rerun") from None


class CircuitError(ValueError):
    """The run folder holds no such circuit: the message says what it does hold."""


def _available(values) -> str:
    return ", ".join(sorted({str(v) for v in values})) or "none"


def check_run(folder: str | Path, method: str, task: str, seed: int) -> None:
    """CircuitError unless ``folder`` is a run folder holding a finished (method, task, seed)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CircuitError(f"no run folder {folder}; pass the --out folder of an eval.run")
    try:
        records = read_records(folder)
    except FileNotFoundError as exc:
        raise CircuitError(str(exc)) from None
    if method not in {r.method for r in records}:
        has = _available(r.method for r in records)
        raise CircuitError(f"method {method!r} is not in run {folder}; it has: {has}")
    of_method = [r for r in records if r.method == method]
    if task not in {r.task for r in of_method}:
        has = _available(r.task for r in of_method)
        raise CircuitError(f"task {task!r} has no {method} run in {folder}; it has: {has}")
    runs = [r for r in of_method if r.task == task]
    match = [r for r in runs if r.seed == seed]
    if not match:
        has = _available(r.seed for r in runs)
        raise CircuitError(f"no seed {seed} of {method} on {task} in {folder}; seeds: {has}")
    if not match[0].ok:
        raise CircuitError(
            f"{method} on {task}, seed {seed} found no circuit in {folder}: {match[0].status}"
        )


def load_circuit(
    folder: str | Path,
    method: str,
    task: str,
    seed: int = 0,
    fraction: float | None = None,
    n_edges: int | None = None,
) -> Circuit:
    """The circuit of one run at ``fraction`` of the edges or its top ``n_edges`` (exactly one
    of the two), rebuilt from the stored scores; the ground truth and the ranking's sign
    convention come from ``circuits/<run>.json`` (or ``records.csv`` for a run without one:
    then no ground truth). CircuitError when the folder lacks the run."""
    if (fraction is None) == (n_edges is None):
        raise ValueError("give exactly one of fraction and n_edges")
    check_run(folder, method, task, seed)
    try:
        edge_names, scores = read_scores(folder, method, task, seed)
    except FileNotFoundError as exc:
        raise CircuitError(f"{exc}: the run kept no scores") from None
    try:
        stored = read_circuits(folder, method, task, seed)
        signed, truth = bool(stored["signed"]), stored["ground_truth"]
    except FileNotFoundError:  # a run folder from before circuits were written
        rec = next(
            r for r in read_records(folder) if (r.method, r.task, r.seed) == (method, task, seed)
        )
        signed, truth = rec.signed, None
    s = scores.double().numpy()
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ValueError(f"the size must be in (0, 100%], got {fraction:.6g}")
        mask = pruned_masks(edge_names, s, [fraction], signed)[0]
        n_top = int(metrics.circuit_masks(s, [fraction], signed).sum())
        label = f"{fraction * 100:g}%"
    else:
        mask = top_edges_mask(edge_names, s, n_edges, signed)
        n_top, label = n_edges, f"{n_edges} edges"
    idx = ranked(edge_names, s, mask, signed)
    return Circuit(
        method,
        task,
        seed,
        label,
        n_top,
        tuple(edge_names[i] for i in idx),
        tuple(float(s[i]) for i in idx),
        signed,
        None if truth is None else frozenset(truth),
        tuple(edge_names),
    )
