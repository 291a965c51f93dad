"""``ipd-neg``: interpolated-patch descent that also finds *negative* components.

An objective that only preserves the output (plain ``ipd``) keeps a component whose clean
activation lowers the task metric (IOI's negative name movers) as if it were needed, and cannot
say that it works against the behaviour. ``ipd-neg`` runs plain ipd for the positive side and
adds an adversary with its own coefficients ``a = sigmoid(phi)``, started near the clean model,
that *raises* the metric while ablating as few edges as it can. It minimises

    -gain(a) + lam(t) * sum(1 - a),
    gain(a) = (metric(a) - metric(clean)) / |metric(clean) - metric(ablated)|,

so an edge is ablated when that buys more than ``lam`` of the clean-to-ablated metric gap (a
sum, not a mean, so that ``lam`` means the same on every graph). ``lam`` ramps up over the
warm-up as in ipd; optimiser, steps and early stopping are ipd's (``positive``), and the loop is
:func:`methods.descent.descend` with a gradient hook and a credit hook.

The adversary's coefficients saturate (Adam moves every coordinate at about ``lr`` per step
whatever its gradient), so ``1 - a`` says *whether* an edge is ablated, not how much it matters.
Each edge's *credit* keeps the magnitude: the sum over steps of ``d gain / d phi * delta phi``,
the part of the adversary's gain that came through the edge (over all edges it adds up to the
gain achieved, to first order per step).

Scores (``signed = True``, the evaluator ranks by the signed value): a *negative component*
(``1 - a > threshold`` and credit > 0) scores ``-credit``; every other edge scores plain ipd's
keep coefficient in [0, 1]. So negative components rank last and are ablated first. After a run:
``negative_edges`` lists ``(edge name, credit)`` strongest first; ``strength`` (``1 - a``) and
``credit`` hold every edge's values (tensors); ``trace`` is a dict with the standard keys
(``steps``: both runs' steps; ``stopped_early`` and ``final_loss``: the positive run's), the
two runs' traces under ``positive`` and ``adversary``, and ``negative_edges`` as
``[edge name, credit]`` pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from jaxtyping import Float
from torch import Tensor

from methods.base import Method, MethodConfig, Problem, register_method
from methods.config import check_types
from methods.descent import Gates, LinearWarmup, PlateauStop, SigmoidGates, descend
from methods.ipd import IpdConfig, run_ipd


@dataclass(frozen=True)
class IpdNegConfig(MethodConfig):
    """``positive``: the positive run (plain ipd). Its ``steps``, ``lr``, ``init``, ``warmup``,
    ``patience`` and ``tol`` also drive the adversary; its ``objective`` and ``penalty`` apply
    to the positive run only. ``lam``: the normalised metric gain an edge must buy to be
    ablated by the adversary. ``threshold``: the adversary strength ``1 - a`` above which an
    edge counts as a negative component."""

    positive: IpdConfig = IpdConfig()
    lam: float = 0.02
    threshold: float = 0.5
    progress: bool = False

    def __post_init__(self) -> None:
        check_types(self)
        if not (math.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"lam (the price of an ablated edge) must be >= 0, got {self.lam}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")


def _normalised_gain(problem: Problem):
    """gain(a) = (metric(a) - metric(clean)) / |metric(clean) - metric(ablated)|."""
    clean = problem.metric_clean
    scale = max(abs(clean - problem.metric_ablated), 1e-12)
    return lambda a: (problem.metric_of(a) - clean) / scale


def ablated_mass(gates: Gates) -> Tensor:
    """``sum(1 - a)``: how many edges' worth the adversary ablates."""
    return (1 - gates.sample()).sum()


class _Credit:
    """The adversary's gradient and credit hooks for :func:`methods.descent.descend`: the
    gradient of ``-gain + lam * sum(1 - a)`` with the penalty's part written out, and after each
    step ``credit += d gain / d phi * delta phi``."""

    def __init__(self, gates: SigmoidGates, schedule: LinearWarmup) -> None:
        self.phi, self.schedule = gates.theta, schedule
        self.credit = torch.zeros_like(self.phi, requires_grad=False)
        self.dgain: Tensor | None = None

    def backward(self, step: int, faithfulness: Tensor, term: Tensor) -> None:
        (dloss,) = torch.autograd.grad(faithfulness, self.phi)  # faithfulness = -gain
        self.dgain = -dloss
        with torch.no_grad():
            a = torch.sigmoid(self.phi)
            self.phi.grad = -self.dgain - self.schedule.lam_at(step) * a * (1 - a)

    def after_step(self, step: int, before: list[Tensor], after: list[Tensor]) -> None:
        self.credit += self.dgain * (after[0] - before[0])


def run_adversary(problem: Problem, cfg: IpdNegConfig) -> tuple[Tensor, Tensor, dict]:
    """Learn coefficients that raise the metric by ablating few edges; return each edge's
    ablation strength ``1 - a``, its credit and a trace (``steps``, ``stopped_early``,
    ``start_gain`` at the initial coefficients, ``gain`` at the final ones: the credit sums to
    ``gain - start_gain``; ``ablated``: ``sum(1 - a)`` at the end; ``seconds``)."""
    b = cfg.positive
    gates = SigmoidGates(problem.n_edges, b.init, problem.model.device)
    gain_of = _normalised_gain(problem)
    schedule = LinearWarmup.over(cfg.lam, b.warmup, b.steps, penalty=ablated_mass)
    hooks = _Credit(gates, schedule)
    run = descend(
        gates,
        lambda a: -gain_of(a),
        schedule,
        steps=b.steps,
        lr=b.lr,
        stop=PlateauStop(b.tol, b.patience),
        backward=hooks.backward,
        after_step=hooks.after_step,
        progress="ipd-neg adversary" if cfg.progress else None,
    )
    phi = gates.theta
    with torch.no_grad():
        gain, ablated = gain_of(torch.sigmoid(phi)).item(), ablated_mass(gates).item()
    trace = dict(
        steps=run.steps,
        stopped_early=run.stopped_early,
        start_gain=-run.initial_faithfulness,
        gain=gain,
        ablated=ablated,
        seconds=run.seconds,
    )
    return torch.sigmoid(-phi).detach(), hooks.credit, trace


def signed_scores(
    keep: Float[Tensor, " n_edges"],
    strength: Float[Tensor, " n_edges"],
    credit: Float[Tensor, " n_edges"],
    threshold: float,
) -> Float[Tensor, " n_edges"]:
    """``-credit`` on negative components (strength > threshold and credit > 0), else ``keep``."""
    return torch.where(negative_mask(strength, credit, threshold), -credit, keep)


def negative_mask(strength: Tensor, credit: Tensor, threshold: float) -> Tensor:
    """Edges the adversary ablates (strength > threshold) and that bought it some gain."""
    return (strength > threshold) & (credit > 0)


@register_method("ipd-neg")
class IpdNegative(Method):
    Config = IpdNegConfig
    signed = True
    description = "ipd plus an adversary that ablates edges to raise the metric; negatives < 0"

    def scores(self, problem: Problem) -> Tensor:
        c = self.config
        positive = replace(c.positive, seed=c.seed, progress=c.progress or c.positive.progress)
        keep, run = run_ipd(problem, positive)
        strength, credit, adversary = run_adversary(problem, c)
        self.strength, self.credit = strength.cpu(), credit.cpu()
        names = problem.model.graph.edge_names
        neg = negative_mask(self.strength, self.credit, c.threshold).nonzero().flatten().tolist()
        self.negative_edges = sorted(
            ((names[i], self.credit[i].item()) for i in neg), key=lambda e: -e[1]
        )
        self.trace = {
            "steps": run.steps + adversary["steps"],
            "stopped_early": run.stopped_early,
            "final_loss": run.faithfulness,
            "seconds": run.seconds + adversary["seconds"],
            "positive": run.summary(),
            "adversary": adversary,
            "negative_edges": [[name, credit] for name, credit in self.negative_edges],
        }
        return signed_scores(keep, strength, credit, c.threshold)
