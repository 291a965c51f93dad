"""Mask learning by gradient descent: the one loop, and the parts a method plugs into it.

- **Gates** turn parameters into masks in [0, 1]: :class:`SigmoidGates` (``m = sigmoid(theta)``)
  and :class:`HardConcreteGates` (Louizos et al. 2018: stochastic during training, an expected
  L0 penalty). Each has ``parameters()``, ``sample()`` (the masks of a training step),
  ``penalty()`` (the differentiable expected density in [0, 1]) and ``scores()`` (one detached
  deterministic score per gate).
- A **schedule** is the loss term that pushes towards sparsity: ``schedule(step, gates)``.
  It sees the gates, so it can read the current density and add any term (a linear warm-up of
  ``lambda``: :class:`LinearWarmup`; a target density held by learned Lagrange multipliers:
  :class:`LagrangianTarget` (edge-pruning); an
  annealed ``lambda`` path, fit the same protocol). Its ``warmup_steps`` keep the early stop
  off while the term is still growing.
- :class:`PlateauStop`: stop when the loss has stopped improving.
- :func:`descend`: Adam on ``faithfulness(masks) + schedule(step, gates)``, with hooks for a
  custom gradient and for work after each step (``ipd-neg``'s adversary uses both).
- :func:`faithfulness`: the normalised faithfulness loss of the masks (``kl`` or ``metric``).
- :class:`DescentConfig`: the hyperparameters the mask-learning configs share (``ipd``, ``sp``,
  ``edge-pruning``); :class:`PenaltyDescentConfig` adds a fixed sparsity weight ``lam`` and the
  plateau stop (``ipd``, ``sp``).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from methods.base import MethodConfig
from methods.config import check_descent_ranges, check_types
from tasks.problem import Problem


class Gates(ABC):
    """One logit ``theta`` per gate, started at ``init``; subclasses map it to masks."""

    def __init__(self, n: int, init: float, device: torch.device | str | None = None) -> None:
        self.theta = torch.full((n,), float(init), device=device, requires_grad=True)

    def parameters(self) -> list[Tensor]:
        """What the optimiser updates."""
        return [self.theta]

    @abstractmethod
    def sample(self) -> Float[Tensor, " n"]:
        """The masks of one training step (differentiable in ``theta``)."""

    @abstractmethod
    def penalty(self) -> Float[Tensor, ""]:
        """Differentiable expected density: the mean expected gate value (or L0 share)."""

    @abstractmethod
    def scores(self) -> Float[Tensor, " n"]:
        """One deterministic score per gate, detached (higher = keep)."""


class SigmoidGates(Gates):
    """``m = sigmoid(theta)``; the penalty is the mean of ``m`` (an L1 norm over ``n``); the
    scores are ``m``."""

    def sample(self) -> Float[Tensor, " n"]:
        return torch.sigmoid(self.theta)

    def penalty(self) -> Float[Tensor, ""]:
        return torch.sigmoid(self.theta).mean()

    def scores(self) -> Float[Tensor, " n"]:
        return torch.sigmoid(self.theta).detach()


class HardConcreteGates(Gates):
    """Hard-concrete gates (Louizos et al. 2018): a stretched, clamped binary concrete variable
    with temperature ``beta`` on ``(gamma, zeta)``, so a gate can be exactly 0 or 1.

    ``sample()`` draws a stochastic gate (training); ``penalty()`` is the expected L0 norm over
    ``n`` (the mean probability that a gate is non-zero); ``scores()`` is that probability per
    gate; ``deterministic()`` is the test-time gate ``clamp(sigmoid(theta) (zeta - gamma) +
    gamma, 0, 1)``.
    """

    def __init__(
        self,
        n: int,
        init: float,
        device: torch.device | str | None = None,
        beta: float = 2 / 3,
        gamma: float = -0.1,
        zeta: float = 1.1,
    ) -> None:
        if not (beta > 0 and gamma < 0 and zeta > 1):
            raise ValueError(
                f"hard-concrete gates need beta > 0, gamma < 0 < 1 < zeta; got beta={beta}, "
                f"gamma={gamma}, zeta={zeta}"
            )
        super().__init__(n, init, device)
        self.beta, self.gamma, self.zeta = beta, gamma, zeta
        self._shift = beta * math.log(-gamma / zeta)

    def sample(self) -> Float[Tensor, " n"]:
        u = torch.rand_like(self.theta).clamp(1e-6, 1 - 1e-6)
        s = torch.sigmoid((u.log() - (-u).log1p() + self.theta) / self.beta)
        return (s * (self.zeta - self.gamma) + self.gamma).clamp(0, 1)

    def penalty(self) -> Float[Tensor, ""]:
        return torch.sigmoid(self.theta - self._shift).mean()

    def scores(self) -> Float[Tensor, " n"]:
        return torch.sigmoid(self.theta - self._shift).detach()

    def deterministic(self) -> Float[Tensor, " n"]:
        """The expected-value gate used at test time in the paper (detached)."""
        s = torch.sigmoid(self.theta.detach())
        return (s * (self.zeta - self.gamma) + self.gamma).clamp(0, 1)


class Schedule(Protocol):
    """The sparsity term of the loss at a step. ``warmup_steps``: the plateau stop is off until
    step ``warmup_steps`` (1-based), while the term is still changing by design."""

    warmup_steps: int

    def __call__(self, step: int, gates: Gates) -> Float[Tensor, ""]:
        """The term added to the faithfulness loss at 0-based ``step``."""
        ...


@dataclass(frozen=True)
class LinearWarmup:
    """``lam * min(1, (step + 1) / warmup_steps) * penalty(gates)``; ``penalty`` defaults to
    ``gates.penalty()`` (a method with another sparsity measure passes its own)."""

    lam: float
    warmup_steps: int = 1
    penalty: Callable[[Gates], Tensor] | None = None

    @classmethod
    def over(
        cls,
        lam: float,
        fraction: float,
        steps: int,
        penalty: Callable[[Gates], Tensor] | None = None,
    ) -> LinearWarmup:
        """Ramp over the first ``fraction`` of ``steps`` (at least one step)."""
        return cls(lam, max(1, int(fraction * steps)), penalty)

    def lam_at(self, step: int) -> float:
        return self.lam * min(1.0, (step + 1) / self.warmup_steps)

    def __call__(self, step: int, gates: Gates) -> Tensor:
        penalty = gates.penalty() if self.penalty is None else self.penalty(gates)
        return self.lam_at(step) * penalty


class LagrangianTarget:
    """A target density held by a Lagrangian (Edge Pruning, Bhaskar et al. 2024, after CoFi,
    Xia et al. 2022): the term ``l1 * (d - t) + l2 * (d - t)^2``, where ``d`` is the gates'
    expected density (``gates.penalty()``) and the multipliers ``l1, l2`` are learned by
    *maximising* the loss (gradient ascent, Adam with ``lr``), so any gap between ``d`` and the
    target is priced up until the descent closes it.

    The target ``t`` ramps linearly from ``start`` (1: every edge kept) to ``target`` over the
    first ``warmup_steps`` steps; the plateau stop waits for the ramp. Each call first takes the
    ascent step on the multipliers from the gradient the previous step's term left on them
    (``descend`` backpropagates the whole loss, so the multipliers receive theirs too), then
    builds this step's term.
    """

    def __init__(
        self, target: float, warmup_steps: int = 1, lr: float = 0.01, start: float = 1.0
    ) -> None:
        if not 0 <= target <= 1:
            raise ValueError(f"target density must be in [0, 1], got {target}")
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}")
        if not lr > 0:
            raise ValueError(f"lr (of the multipliers) must be > 0, got {lr}")
        self.target, self.warmup_steps, self.start = float(target), int(warmup_steps), start
        self.multipliers = torch.zeros(2, requires_grad=True)
        self._opt = torch.optim.Adam([self.multipliers], lr=lr, maximize=True)

    def target_at(self, step: int) -> float:
        """The density target at 0-based ``step``: the linear ramp, then ``target``."""
        frac = min(1.0, (step + 1) / self.warmup_steps)
        return self.start + frac * (self.target - self.start)

    def __call__(self, step: int, gates: Gates) -> Tensor:
        if self.multipliers.grad is not None:
            self._opt.step()
            self._opt.zero_grad(set_to_none=True)
        gap = gates.penalty() - self.target_at(step)
        lam = self.multipliers.to(gap.device)
        return lam[0] * gap + lam[1] * gap**2


class PlateauStop:
    """Early stop when the loss has not improved by ``tol`` (relative to |best|) for ``patience``
    steps. Relative to |best| so that it is also right for losses below zero (ipd-neg's)."""

    def __init__(self, tol: float, patience: int) -> None:
        self.tol, self.patience = tol, patience
        self.best, self.since = math.inf, 0

    def __call__(self, loss: float) -> bool:
        if self.best == math.inf or loss < self.best - self.tol * abs(self.best):
            self.best, self.since = loss, 0
            return False
        self.since += 1
        return self.since >= self.patience


@dataclass
class DescentTrace:
    """What a descent did. ``faithfulness`` and ``loss`` are the values at the last step taken
    (before its update); ``density`` is ``gates.penalty()`` at the final parameters."""

    steps: int = 0
    stopped_early: bool = False
    initial_faithfulness: float = math.nan
    faithfulness: float = math.nan
    loss: float = math.nan
    density: float = math.nan
    seconds: float = 0.0

    def summary(self) -> dict:
        """The trace as a JSON-ready dict with the standard keys (``final_loss``: the final
        faithfulness loss)."""
        d = asdict(self)
        return {
            "steps": d.pop("steps"),
            "stopped_early": d.pop("stopped_early"),
            "final_loss": d.pop("faithfulness"),
            "initial_loss": d.pop("initial_faithfulness"),
            "final_objective": d.pop("loss"),
            "final_density": d.pop("density"),
            **d,
        }


Backward = Callable[[int, Tensor, Tensor], None]
AfterStep = Callable[[int, list[Tensor], list[Tensor]], None]


def descend(
    gates: Gates,
    faithfulness: Callable[[Tensor], Tensor],
    schedule: Schedule,
    *,
    steps: int,
    lr: float,
    stop: PlateauStop | None = None,
    expand: Callable[[Tensor], Tensor] | None = None,
    backward: Backward | None = None,
    after_step: AfterStep | None = None,
    progress: str | None = None,
) -> DescentTrace:
    """Adam on ``faithfulness(expand(gates.sample())) + schedule(step, gates)`` for up to
    ``steps`` steps; the gates hold the result.

    ``expand`` maps the gates' masks to the masks the model reads (shared or fixed edges);
    ``backward(step, faithfulness, term)`` replaces ``(faithfulness + term).backward()`` and
    must set the parameters' ``.grad``; ``after_step(step, before, after)`` runs under no_grad
    after each update with copies of the parameters before it and the parameters themselves.
    ``stop`` is consulted with the total loss once ``schedule.warmup_steps`` steps are done.
    ``progress``: a progress bar with this label (None: none).
    """
    params = gates.parameters()
    opt = torch.optim.Adam(params, lr=lr)
    to_masks = expand or (lambda m: m)
    trace = DescentTrace()
    t0 = time.perf_counter()
    bar = tqdm(range(steps), disable=progress is None, desc=progress)
    for step in bar:
        opt.zero_grad(set_to_none=True)
        f = faithfulness(to_masks(gates.sample()))
        term = schedule(step, gates)
        loss = f + term
        if backward is None:
            loss.backward()
        else:
            backward(step, f, term)
        before = [p.detach().clone() for p in params] if after_step else []
        opt.step()
        if after_step is not None:
            with torch.no_grad():
                after_step(step, before, params)
        trace.steps, trace.faithfulness, trace.loss = step + 1, f.item(), loss.item()
        if step == 0:
            trace.initial_faithfulness = trace.faithfulness
        if progress is not None:
            bar.set_postfix(faith=f"{trace.faithfulness:.4f}", loss=f"{trace.loss:.4f}")
        if stop is not None and step + 1 >= schedule.warmup_steps and stop(trace.loss):
            trace.stopped_early = True
            break
    with torch.no_grad():
        trace.density = gates.penalty().item()
    trace.seconds = time.perf_counter() - t0
    return trace


# ----- the faithfulness loss --------------------------------------------------------------------


def _kl_loss(problem: Problem) -> Callable[[Tensor], Tensor]:
    scale = max(problem.divergence_ablated, 1e-12)
    return lambda m: problem.divergence_of(m) / scale


def _metric_loss(problem: Problem) -> Callable[[Tensor], Tensor]:
    clean, ablated = problem.metric_clean, problem.metric_ablated
    return lambda m: ((problem.metric_of(m) - clean) / (clean - ablated)) ** 2


# objective -> (problem -> loss of the masks, normalised to be ~1 for the fully ablated model)
FAITHFULNESS: dict[str, Callable[[Problem], Callable[[Tensor], Tensor]]] = {
    "kl": _kl_loss,
    "metric": _metric_loss,
}
OBJECTIVES = tuple(FAITHFULNESS)


def faithfulness(problem: Problem, objective: str) -> Callable[[Tensor], Tensor]:
    """The loss of the masks for ``objective``, normalised to be ~1 for the fully ablated
    model: ``kl``, the task's divergence from the clean output divided by its value for the
    fully ablated model; ``metric``, the squared normalised metric recovery
    ``((m(circuit) - m(clean)) / (m(clean) - m(ablated)))^2``."""
    return FAITHFULNESS[objective](problem)


# ----- configs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DescentConfig(MethodConfig):
    """What every mask-learning config has: ``steps`` of Adam at ``lr``; ``init``, the initial
    gate logit (3: sigmoid 0.95, near the clean model); ``warmup``, the fraction of the steps
    over which the sparsity term ramps up; ``beta``/``gamma``/``zeta``, the hard-concrete
    constants (Louizos et al. 2018). A subclass re-declares a field to change its default.
    Subclasses that add fields check them in their own ``__post_init__``
    (:func:`methods.config.check_types` first, :func:`methods.config.check_descent_ranges`)."""

    steps: int = 300
    lr: float = 0.1
    init: float = 3.0
    warmup: float = 0.2
    beta: float = 2 / 3
    gamma: float = -0.1
    zeta: float = 1.1

    def __post_init__(self) -> None:
        check_types(self)
        check_descent_ranges(self)

    def hard_concrete_gates(
        self, n: int, device: torch.device | str | None = None
    ) -> HardConcreteGates:
        """``n`` hard-concrete gates started at ``init`` with this config's constants."""
        return HardConcreteGates(
            n, self.init, device, beta=self.beta, gamma=self.gamma, zeta=self.zeta
        )


@dataclass(frozen=True)
class PenaltyDescentConfig(DescentConfig):
    """A descent with a fixed sparsity weight and an early stop: ``lam`` (ramped linearly from 0
    over the ``warmup``, :meth:`schedule`) weighs the gates' penalty; the run stops when the loss
    has not improved by ``tol`` (relative) for ``patience`` steps after the warm-up
    (:meth:`plateau_stop`)."""

    lam: float = 0.05
    patience: int = 40
    tol: float = 1e-3

    def schedule(self) -> LinearWarmup:
        """``lam`` ramped over the first ``warmup`` fraction of the ``steps``."""
        return LinearWarmup.over(self.lam, self.warmup, self.steps)

    def plateau_stop(self) -> PlateauStop:
        """A fresh early stop (one per run: it keeps state)."""
        return PlateauStop(self.tol, self.patience)
