"""Scoring one method's edge scores: edge recovery against the ground truth, and faithfulness.

The faithfulness curve evaluates every circuit size in one batched patched forward
(``Problem.metric_of`` with ``[n_masks, n_edges]`` masks), chunked over masks when the batch of
patched activations would exceed a memory budget. On a task whose metric gives no signal
(``Problem.has_signal``; a method may still run there, e.g. ``random``) faithfulness is
undefined: the curve and its areas are NaN, and edge recovery is scored as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psutil
import torch
from jaxtyping import Bool, Float
from torch import Tensor

from eval import metrics
from tasks.problem import Problem

BUDGET_SHARE = 0.25  # of the free device (or host) memory that one evaluation forward may use


@dataclass
class Evaluation:
    """Everything the evaluator measures for one score vector."""

    auc: float
    ap: float
    precision_at_k: float
    fpr: list[float]
    tpr: list[float]
    fractions: list[float]
    n_kept: list[int]
    faithfulness: list[float]
    cpr: float
    cmd: float
    cpr_log: float
    cmd_log: float
    metric_clean: float
    metric_ablated: float


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


def faithfulness_curve(
    problem: Problem,
    scores,
    signed: bool = False,
    fractions=metrics.FRACTIONS,
    budget_bytes: int | None = None,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Normalised faithfulness of the top-``fraction`` circuits (NaN without a signal); also the
    clean/ablated metric."""
    masks = torch.from_numpy(metrics.circuit_masks(scores, fractions, signed))
    if not problem.has_signal:
        nan = np.full(len(masks), np.nan)
        return masks.sum(1).numpy(), nan, problem.metric_clean, problem.metric_ablated
    m_circuit = metric_of_masks(problem, masks, budget_bytes).double().numpy()
    m_clean, m_ablated = problem.metric_clean, problem.metric_ablated
    values = metrics.normalised_faithfulness(m_circuit, m_clean, m_ablated)
    return masks.sum(1).numpy(), values, m_clean, m_ablated


def evaluate(
    problem: Problem,
    scores,
    truth: np.ndarray,
    signed: bool = False,
    fractions=metrics.FRACTIONS,
    budget_bytes: int | None = None,
    signed_recovery: bool | None = None,
) -> Evaluation:
    """Edge recovery of ``scores`` against the boolean ground truth ``truth`` and faithfulness.
    ``signed_recovery``: rank by the signed scores for recovery (None: as ``signed``)."""
    scores = np.asarray(scores, dtype=np.float64)
    rec = signed if signed_recovery is None else signed_recovery
    fpr, tpr = metrics.roc_curve(truth, scores, rec)
    fpr, tpr = metrics.downsample(fpr, tpr, 200)
    kept, values, m_clean, m_ablated = faithfulness_curve(
        problem, scores, signed, fractions, budget_bytes
    )
    return Evaluation(
        auc=metrics.roc_auc(truth, scores, rec),
        ap=metrics.average_precision(truth, scores, rec),
        precision_at_k=metrics.precision_at_k(truth, scores, rec),
        fpr=fpr,
        tpr=tpr,
        fractions=list(fractions),
        n_kept=[int(k) for k in kept],
        faithfulness=values.tolist(),
        cpr=metrics.cpr(fractions, values),
        cmd=metrics.cmd(fractions, values),
        cpr_log=metrics.cpr(fractions, values, log_x=True),
        cmd_log=metrics.cmd(fractions, values, log_x=True),
        metric_clean=m_clean,
        metric_ablated=m_ablated,
    )
