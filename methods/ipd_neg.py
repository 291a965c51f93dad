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
warm-up as in ipd; optimiser, steps and early stopping are ipd's (``base``).

The adversary's coefficients saturate (Adam moves every coordinate at about ``lr`` per step
whatever its gradient), so ``1 - a`` says *whether* an edge is ablated, not how much it matters.
Each edge's *credit* keeps the magnitude: the sum over steps of ``d gain / d phi * delta phi``,
the part of the adversary's gain that came through the edge (over all edges it adds up to the
gain achieved, to first order per step).

Scores (``signed = True``, the evaluator ranks by the signed value): a *negative component*
(``1 - a > threshold`` and credit > 0) scores ``-credit``; every other edge scores plain ipd's
keep coefficient in [0, 1]. So negative components rank last and are ablated first. After a run:
``negative_edges`` lists ``(edge name, credit)`` strongest first; ``strength`` (``1 - a``) and
``credit`` hold every edge's values; ``trace`` and ``adversary_trace`` describe the two runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from methods.base import Method, MethodConfig, Problem, register_method
from methods.ipd import IpdConfig, PlateauStop, run_ipd


@dataclass(frozen=True)
class IpdNegConfig(MethodConfig):
    """``base``: the positive run (plain ipd). Its ``steps``, ``lr``, ``init``, ``warmup``,
    ``patience`` and ``tol`` also drive the adversary; its ``objective`` and ``penalty`` apply
    to the positive run only. ``lam``: the normalised metric gain an edge must buy to be
    ablated by the adversary. ``threshold``: the adversary strength ``1 - a`` above which an
    edge counts as a negative component."""

    base: IpdConfig = IpdConfig()
    lam: float = 0.02
    threshold: float = 0.5
    progress: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.base, IpdConfig):
            raise TypeError(f"base must be an IpdConfig, got {type(self.base).__name__}")
        if not (math.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"lam (the price of an ablated edge) must be >= 0, got {self.lam}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")


@dataclass
class AdversaryTrace:
    """What the adversary did: steps, seconds, final normalised gain and ablated mass."""

    steps: int = 0
    seconds: float = 0.0
    start_gain: float = math.nan  # at the initial coefficients (sigmoid(init), not quite clean)
    gain: float = math.nan  # at the final coefficients; credit sums to gain - start_gain
    ablated: float = math.nan  # sum(1 - a): edges' worth of ablation
    stopped_early: bool = False


def _normalised_gain(problem: Problem):
    """gain(a) = (metric(a) - metric(clean)) / |metric(clean) - metric(ablated)|."""
    clean = problem.metric_clean
    scale = max(abs(clean - problem.metric_ablated), 1e-12)
    return lambda a: (problem.metric_of(a) - clean) / scale


def run_adversary(problem: Problem, cfg: IpdNegConfig) -> tuple[Tensor, Tensor, AdversaryTrace]:
    """Learn coefficients that raise the metric by ablating few edges; return each edge's
    ablation strength ``1 - a``, its credit and a trace."""
    b = cfg.base
    phi = torch.full((problem.n_edges,), b.init, device=problem.model.device, requires_grad=True)
    credit = torch.zeros_like(phi, requires_grad=False)
    opt = torch.optim.Adam([phi], lr=b.lr)
    gain_of = _normalised_gain(problem)
    warm = max(1, int(b.warmup * b.steps))
    stop = PlateauStop(b.tol, b.patience)
    trace = AdversaryTrace()
    t0 = time.perf_counter()
    bar = tqdm(range(b.steps), disable=not cfg.progress, desc="ipd-neg adversary")
    for step in bar:
        lam = cfg.lam * min(1.0, (step + 1) / warm)
        gain, ablated, loss = _adversary_step(phi, opt, gain_of, lam, credit)
        if step == 0:
            trace.start_gain = gain
        trace.steps, trace.ablated = step + 1, ablated
        if cfg.progress:
            bar.set_postfix(gain=f"{gain:.4f}", ablated=f"{ablated:.1f}")
        if step + 1 >= warm and stop(loss):
            trace.stopped_early = True
            break
    with torch.no_grad():
        trace.gain = gain_of(torch.sigmoid(phi)).item()
    trace.seconds = time.perf_counter() - t0
    return torch.sigmoid(-phi).detach(), credit, trace


def _adversary_step(phi, opt, gain_of, lam: float, credit: Tensor) -> tuple[float, float, float]:
    """One Adam step on ``-gain + lam * sum(1 - a)``; adds ``d gain / d phi * delta phi`` to
    ``credit``. Returns gain, ablated mass and loss before the step."""
    gain = gain_of(torch.sigmoid(phi))
    (dgain,) = torch.autograd.grad(gain, phi)
    with torch.no_grad():
        a = torch.sigmoid(phi)
        ablated = (1 - a).sum()
        phi.grad = -dgain - lam * a * (1 - a)  # d loss / d phi; the penalty's is analytic
        before = phi.detach().clone()
        opt.step()
        credit += dgain * (phi - before)
    return gain.item(), ablated.item(), (-gain + lam * ablated).item()


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
        base = replace(c.base, seed=c.seed, progress=c.progress or c.base.progress)
        keep, self.trace = run_ipd(problem, base)
        strength, credit, self.adversary_trace = run_adversary(problem, c)
        self.strength, self.credit = strength.cpu(), credit.cpu()
        names = problem.model.graph.edge_names
        neg = negative_mask(self.strength, self.credit, c.threshold).nonzero().flatten().tolist()
        self.negative_edges = sorted(
            ((names[i], self.credit[i].item()) for i in neg), key=lambda e: -e[1]
        )
        return signed_scores(keep, strength, credit, c.threshold)
