"""``ipd-neg``: interpolated-patch descent that also finds *negative* components.

An objective that only preserves the output (plain ``ipd``) keeps a component whose clean
activation lowers the task metric (IOI's negative name movers) as if it were needed, and cannot
say that it works against the behaviour. ``ipd-neg`` trains, *jointly with the circuit* (one
descent, one step for both; the write-up's "adversarial coefficients network"), an adversary
with its own coefficients ``a = sigmoid(phi)``, started near the clean model, that ablates edges
of the current circuit to *raise* the metric while ablating as few edges as it can:

    circuit:    faithfulness(m) + lam_pos(t) * mean(m)                 (plain ipd's loss)
    adversary:  -gain(m * a) + lam(t) * sum(1 - a),  m held fixed (detached),
    gain(x) = (metric(x) - metric(clean)) / |metric(clean) - metric(ablated)|,

so an edge is ablated when that buys more than ``lam`` of the clean-to-ablated metric gap (a
sum, not a mean, so that ``lam`` means the same on every graph). Both ``lam`` ramp up over the
warm-up; optimiser, steps and early stopping are ipd's (``positive``), and the loop is
:func:`methods.descent.descend` with a gradient hook and a step hook.

The adversary's coefficients saturate (Adam moves every coordinate at about ``lr`` per step
whatever its gradient), so ``1 - a`` says *whether* an edge is ablated, not how much it matters.
Each edge's *credit* keeps the magnitude: the sum over steps of ``d gain / d phi * delta phi``,
the part of the adversary's gain that came through the edge.

Scores (``signed = True``: faithfulness ranks by the signed value, so negative components are
ablated first; ``signed_recovery = False``: edge recovery ranks by ``|score|``, since a
ground-truth circuit holds its negative components): a *negative component* (``1 - a >
threshold`` and credit > 0) scores ``-credit``; every other edge scores the circuit's rank by
``positive.rank`` (:mod:`methods.ipd_rank`; >= 0). After a run: ``negative_edges`` lists
``(edge name, credit)`` strongest first; ``strength`` (``1 - a``) and ``credit`` hold every
edge's values (tensors); ``trace`` has the standard keys (``final_loss``: the circuit's
normalised faithfulness loss), the adversary's ``start_gain``, ``gain`` and ``ablated``, and
``negative_edges`` as ``[edge name, credit]`` pairs (written with the run's scores).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from jaxtyping import Float
from torch import Tensor

from methods.base import Method, MethodConfig, register_method
from methods.config import check_types
from methods.descent import Gates, LinearWarmup, SigmoidGates, descend, faithfulness
from methods.ipd import IpdConfig
from methods.ipd_rank import ExitTracker, attribution, exit_scores
from tasks.problem import Problem


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


class _Joint:
    """One descent over ``[theta, phi]`` (``SigmoidGates`` of ``2 n``): the circuit's ``m =
    sigmoid(theta)`` and the adversary's ``a = sigmoid(phi)``, trained together, step by step.

    The loss is ``faithfulness(m) + lam_pos(t) mean(m)`` (plain ipd's) plus the adversary's
    ``-gain(m.detach() * a) + lam(t) sum(1 - a)``: the adversary ablates edges *of the current
    circuit* (the model reads ``m * a``) to raise the metric, and the circuit never sees the
    adversary's gradient. The gradient hook writes both parts; the step hook adds each edge's
    credit ``d gain / d phi * delta phi`` and tracks when circuit edges leave (``ipd``'s
    ``pruning`` rank)."""

    def __init__(self, problem: Problem, cfg: IpdNegConfig, positive: IpdConfig) -> None:
        self.n, self.positive = problem.n_edges, positive
        self.gates = SigmoidGates(2 * self.n, positive.init, problem.model.device)
        self.faith = faithfulness(problem, positive.objective)
        self.gain_of = _normalised_gain(problem)
        self.lam_pos = positive.schedule()
        self.lam_adv = LinearWarmup.over(cfg.lam, positive.warmup, positive.steps)
        self.warmup_steps = self.lam_pos.warmup_steps
        self.credit = torch.zeros(self.n, device=problem.model.device)
        self.tracker = ExitTracker(self.circuit, self.n, positive.threshold)
        self.dgain: Tensor | None = None
        self.f_pos = self.gain = math.nan

    def circuit(self) -> Tensor:
        return torch.sigmoid(self.gates.theta[: self.n])

    def adversary(self) -> Tensor:
        return torch.sigmoid(self.gates.theta[self.n :])

    def loss(self, masks: Tensor) -> Tensor:
        m, a = masks[: self.n], masks[self.n :]
        f_pos = self.faith(m)
        self._neg_gain = -self.gain_of(m.detach() * a)
        self.f_pos, self.gain = f_pos.item(), -self._neg_gain.item()
        return f_pos + self._neg_gain

    def __call__(self, step: int, gates: Gates) -> Tensor:  # the sparsity schedule
        m, a = self.circuit(), self.adversary()
        return self.lam_pos.lam_at(step) * m.mean() + self.lam_adv.lam_at(step) * (1 - a).sum()

    def backward(self, step: int, faith: Tensor, term: Tensor) -> None:
        theta = self.gates.theta
        (grad,) = torch.autograd.grad(faith + term, theta, retain_graph=True)
        (dneg,) = torch.autograd.grad(self._neg_gain, theta)
        self.dgain = -dneg[self.n :]
        theta.grad = grad

    def after_step(self, step: int, before: list[Tensor], after: list[Tensor]) -> None:
        self.credit += self.dgain * (after[0] - before[0])[self.n :]
        self.tracker(step, before, after)


def run_joint(problem: Problem, cfg: IpdNegConfig, positive: IpdConfig) -> tuple[_Joint, dict]:
    """Train the circuit and the adversary together; return the state and a trace (the
    standard keys, ``final_loss``: the circuit's normalised faithfulness loss; ``start_gain`` /
    ``gain``: the adversary's normalised metric gain at the first and the last step;
    ``ablated``: ``sum(1 - a)`` at the end; ``in_circuit``: edges with ``m >= threshold``)."""
    joint = _Joint(problem, cfg, positive)
    start_gain = math.nan

    def after_step(step, before, after):
        nonlocal start_gain
        if step == 0:
            start_gain = joint.gain
        joint.after_step(step, before, after)

    run = descend(
        joint.gates,
        joint.loss,
        joint,
        steps=positive.steps,
        lr=positive.lr,
        stop=positive.plateau_stop(),
        backward=joint.backward,
        after_step=after_step,
        progress="ipd-neg" if cfg.progress else None,
    )
    with torch.no_grad():
        m, a = joint.circuit(), joint.adversary()
        final_loss = joint.faith(m).item()
        gain = joint.gain_of(m * a).item()
    trace = dict(
        steps=run.steps,
        stopped_early=run.stopped_early,
        final_loss=final_loss,
        start_gain=start_gain,
        gain=gain,
        ablated=(1 - a).sum().item(),
        in_circuit=int((m >= positive.threshold).sum().item()),
        seconds=run.seconds,
    )
    return joint, trace


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
    signed_recovery = False  # negative components are part of a circuit: recovery by |score|
    description = "ipd plus an adversary that ablates edges to raise the metric; negatives < 0"

    def scores(self, problem: Problem) -> Tensor:
        c = self.config
        positive = replace(c.positive, seed=c.seed, progress=c.progress or c.positive.progress)
        joint, trace = run_joint(problem, c, positive)
        m = joint.circuit().detach()
        if positive.rank == "coefficient":
            keep = m
        else:
            attr = attribution(problem, m).to(m.device)
            rank = positive.rank
            keep = attr if rank == "attribution" else exit_scores(joint.tracker.last_in, attr, m)
        strength = (1 - joint.adversary()).detach()
        self.strength, self.credit = strength.cpu(), joint.credit.cpu()
        names = problem.model.graph.edge_names
        neg = negative_mask(self.strength, self.credit, c.threshold).nonzero().flatten().tolist()
        self.negative_edges = sorted(
            ((names[i], self.credit[i].item()) for i in neg), key=lambda e: -e[1]
        )
        self.trace = {
            **trace,
            "rank": positive.rank,
            "negative_edges": [[name, credit] for name, credit in self.negative_edges],
        }
        return signed_scores(keep.cpu(), self.strength, self.credit, c.threshold)
