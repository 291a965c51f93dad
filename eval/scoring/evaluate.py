"""Scoring one method's edge scores: edge recovery against the ground truth, and faithfulness.

The protocol is MIB's circuit-localization track (Mueller et al. 2025, MIB-circuit-track's
``evaluation.py`` / ``print_results.py``): circuits of ``floor(k * n_edges)`` edges for k in
:data:`eval.scoring.metrics.FRACTIONS`, pruned of dangling edges before they are scored, CPR from
the method's (signed, if it says so) ranking and CMD from |score|. Where the cut splits a block of
tied scores, the evaluator averages over the ways to fill it
(:func:`eval.scoring.metrics.circuit_draws`), so a tie never decides a result. The README's
"Conventions" section lists every column.

The faithfulness curve evaluates every circuit size in one batched patched forward
(``Problem.metric_of`` with ``[n_masks, n_edges]`` masks), chunked over masks when the batch of
patched activations would exceed a memory budget. On a task whose metric gives no signal
(``Problem.has_signal``; a method may still run there, e.g. ``random``) faithfulness is
undefined: the curve and its areas are NaN, and edge recovery is scored as usual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
import psutil
import torch
from jaxtyping import Bool, Float
from torch import Tensor

from eval.scoring import metrics
from patching.prune import NodeIndex, prune_dangling
from tasks.problem import Problem

BUDGET_SHARE = 0.25  # of the free device (or host) memory that one evaluation forward may use


@dataclass
class Evaluation:
    """Everything the evaluator measures for one score vector (see the module docstring).

    auc: rank AUC over all edges (ties count half); auc_pareto: the ACDC paper's pessimistic
    Pareto AUC of the threshold runs (NaN unless the method is threshold-swept); auroc_mib: MIB's
    AUROC from the circuits of the 10 sizes. faithfulness: the curve of the ranking CPR uses
    (signed scores if the method declares them); faithfulness_abs: of the |score| ranking CMD
    uses. n_kept: floor(fraction * n_edges); n_in_graph: edges left after dangling-edge pruning
    (mean over tie draws). overshoot: area of the CPR curve above 1.
    """

    auc: float
    auc_pareto: float
    auroc_mib: float
    ap: float
    precision_at_k: float
    fpr: list[float]
    tpr: list[float]
    fractions: list[float]
    n_kept: list[int]
    n_in_graph: list[float]
    faithfulness: list[float]
    faithfulness_abs: list[float]
    cpr: float
    cmd: float
    cpr_log: float
    cmd_log: float
    overshoot: float
    metric_clean: float
    metric_ablated: float
    n_circuits: int  # distinct circuits evaluated (after tie draws, pruning and de-duplication)


def default_budget(device: torch.device) -> int:
    """Bytes one evaluation forward may use: a share of the memory free now on ``device``."""
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    else:
        free = psutil.virtual_memory().available
    return int(BUDGET_SHARE * free)


def masks_per_chunk(problem: Problem, budget_bytes: int | None = None) -> int:
    """How many masks one patched forward may take within ``budget_bytes`` (default: a share of
    the free memory).

    Per mask the forward holds the source-difference stack ``[n_sources, batch, pos, d_model]``,
    up to twice as much again in layer activations, and the logits ``[batch, pos, d_vocab]``.
    """
    pm = problem.model
    budget = default_budget(pm.device) if budget_bytes is None else budget_bytes
    batch, pos = problem.data.clean.shape
    item = torch.empty((), dtype=pm.dtype).element_size()
    stack = pm.graph.n_sources * batch * pos * pm.cfg.d_model
    logits = batch * pos * pm.cfg.d_vocab
    return max(1, budget // ((3 * stack + logits) * item))


@torch.no_grad()
def metric_of_masks(
    problem: Problem,
    masks: Bool[Tensor, "k n_edges"],
    budget_bytes: int | None = None,
) -> Float[Tensor, " k"]:
    """Mean task metric of each circuit, in as few batched patched forwards as memory allows."""
    masks = masks.to(device=problem.model.device, dtype=problem.model.dtype)
    chunk = masks_per_chunk(problem, budget_bytes)
    return torch.cat([problem.metric_of(part) for part in masks.split(chunk)]).float().cpu()


@dataclass
class Curve:
    """One ranking's faithfulness curve, per circuit size (means over tie draws)."""

    n_kept: np.ndarray
    n_in_graph: np.ndarray
    faithfulness: np.ndarray
    fpr: np.ndarray  # of the pruned circuits against the truth (NaN without truth)
    tpr: np.ndarray


def ties_of(problem: Problem) -> metrics.Ties:
    """The tie rule of scores found on ``problem``: its model's dtype (or its task's own
    tolerance), floored by its metric's clean-ablated gap (:class:`eval.scoring.metrics.Ties`)."""
    gap = abs(problem.metric_clean - problem.metric_ablated) if problem.has_signal else 0.0
    return metrics.Ties(problem.model.dtype, gap if math.isfinite(gap) else 0.0, problem.tie_rtol)


def faithfulness_curves(
    problem: Problem,
    scores,
    rankings: dict[str, bool],
    truth: np.ndarray | None = None,
    fractions=metrics.FRACTIONS,
    budget_bytes: int | None = None,
) -> tuple[dict[str, Curve], int]:
    """The curve of each ranking in ``rankings`` (name -> signed) and the number of distinct
    circuits evaluated. Each size keeps ``floor(fraction * n_edges)`` edges; a tie at the cut is
    resolved by :func:`eval.scoring.metrics.circuit_draws` (exact expectation or 64 seeded draws);
    every circuit is pruned of dangling edges (:func:`patching.prune.prune_dangling`) before it is
    scored; identical circuits (across sizes, draws and rankings) are evaluated once."""
    n_edges = problem.n_edges
    sizes = [metrics.n_kept(f, n_edges) for f in fractions]
    index = NodeIndex.of(problem.model.graph.edge_names)
    parts, ties = {}, ties_of(problem)
    for name, signed in rankings.items():
        masks, owner = metrics.circuit_draws(scores, sizes, signed, ties=ties)
        parts[name] = (prune_dangling(index, masks), owner)
    stacked = np.concatenate([m for m, _ in parts.values()])
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    if problem.has_signal:
        m = metric_of_masks(problem, torch.from_numpy(unique), budget_bytes).double().numpy()
        values = metrics.normalised_faithfulness(m, problem.metric_clean, problem.metric_ablated)[
            inverse
        ]
    else:
        values = np.full(stacked.shape[0], np.nan)
    curves, start = {}, 0
    k = len(sizes)
    for name, (masks, owner) in parts.items():
        v = values[start : start + len(masks)]
        start += len(masks)
        if truth is None:
            fpr = tpr = np.full(len(masks), np.nan)
        else:
            fpr, tpr = metrics.rates_of_masks(truth, masks)
        curves[name] = Curve(
            n_kept=np.asarray(sizes),
            n_in_graph=metrics.mean_by_owner(masks.sum(-1), owner, k),
            faithfulness=metrics.mean_by_owner(v, owner, k),
            fpr=metrics.mean_by_owner(fpr, owner, k),
            tpr=metrics.mean_by_owner(tpr, owner, k),
        )
    return curves, int(unique.shape[0])


def evaluate(
    problem: Problem,
    scores,
    truth: np.ndarray | None,
    signed: bool = False,
    fractions=metrics.FRACTIONS,
    budget_bytes: int | None = None,
    threshold_swept: bool = False,
    signed_recovery: bool | None = None,
) -> Evaluation:
    """Edge recovery of ``scores`` against the boolean ground truth ``truth`` and faithfulness
    on ``problem`` (the held-out split in a benchmark run). ``truth`` None (a task without
    ground truth): every recovery measure NaN, the ROC curve empty.

    CPR uses the method's own ranking (signed scores when ``signed``), CMD the ranking by
    |score| (MIB's ``print_results.py``); an unsigned method has one ranking for both.
    ``threshold_swept``: the method's distinct scores are threshold runs, so ``auc_pareto`` is
    defined (NaN otherwise: a ranking has no runs to take a Pareto front of).
    ``signed_recovery``: rank by the signed scores for edge recovery (None: as ``signed``); a
    signed method whose negative scores mark circuit members (ipd-neg) recovers by |score|.
    """
    scores = np.asarray(scores, dtype=np.float64)
    ties = ties_of(problem)
    metrics.ranking_scores(scores, ties=ties)  # checks shape and finiteness before any forward
    rec = signed if signed_recovery is None else signed_recovery
    recovery = partial(_recovery, ties=ties) if truth is not None else _no_recovery
    fpr, tpr = (
        metrics.downsample(*metrics.roc_curve(truth, scores, rec, ties), 200)
        if truth is not None
        else ([], [])
    )
    rankings = {"cpr": signed, "cmd": False}
    curves, n_circuits = faithfulness_curves(
        problem, scores, rankings, truth, fractions, budget_bytes
    )
    main, absolute = curves["cpr"], curves["cmd"]
    values, values_abs = main.faithfulness, absolute.faithfulness
    return Evaluation(
        auc=recovery(metrics.roc_auc, truth, scores, rec),
        auc_pareto=(
            recovery(metrics.pareto_auc, truth, scores, rec) if threshold_swept else math.nan
        ),
        auroc_mib=metrics.auroc_of_points(main.fpr, main.tpr) if truth is not None else math.nan,
        ap=recovery(metrics.average_precision, truth, scores, rec),
        precision_at_k=recovery(metrics.precision_at_k, truth, scores, rec),
        fpr=fpr,
        tpr=tpr,
        fractions=list(fractions),
        n_kept=[int(k) for k in main.n_kept],
        n_in_graph=main.n_in_graph.tolist(),
        faithfulness=values.tolist(),
        faithfulness_abs=values_abs.tolist(),
        cpr=metrics.cpr(fractions, values),
        cmd=metrics.cmd(fractions, values_abs),
        cpr_log=metrics.cpr(fractions, values, log_x=True),
        cmd_log=metrics.cmd(fractions, values_abs, log_x=True),
        overshoot=metrics.overshoot(fractions, values),
        metric_clean=problem.metric_clean,
        metric_ablated=problem.metric_ablated,
        n_circuits=n_circuits,
    )


def _recovery(measure, truth, scores, signed, ties=metrics.TIES) -> float:
    return measure(truth, scores, signed, ties=ties)


def _no_recovery(measure, truth, scores, signed) -> float:
    return float("nan")  # no ground truth: the record's note says why
