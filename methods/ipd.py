"""``ipd``: interpolated-patch descent, the project's central method.

Every edge gets a keep coefficient ``m = sigmoid(theta)`` that interpolates between its clean
and ablated activation (shared/DESIGN.md); gradient descent on ``theta`` minimises

    faithfulness(m) + lambda(t) * sparsity(m)

through the one-pass patched forward, so a step costs about one forward and one backward pass.

- faithfulness ``kl`` (default): the task's divergence from the clean output at the answer
  positions (KL, or the task's own), divided by its value for the fully ablated model so that
  ``lambda`` means the same on every task; ``metric``: the squared normalised metric recovery
  ``((m(circuit) - m(clean)) / (m(clean) - m(ablated)))^2``.
- sparsity ``l1`` (default): mean of the sigmoid coefficients; ``l0``: the expected L0 norm of
  hard-concrete gates (Louizos et al. 2018), with stochastic gates during training.
- ``lambda`` ramps linearly from 0 over the first ``warmup`` fraction of the steps; Adam; early
  stop when the loss has not improved by ``tol`` (relative) for ``patience`` steps after warm-up.

Scores are the learned coefficients (for ``l0``: each gate's probability of being non-zero).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from methods.base import Method, MethodConfig, Problem, register_method

OBJECTIVES = ("kl", "metric")
PENALTIES = ("l1", "l0")


@dataclass(frozen=True)
class IpdConfig(MethodConfig):
    objective: str = "kl"
    penalty: str = "l1"
    lam: float = 0.05
    steps: int = 300
    lr: float = 0.1
    init: float = 3.0  # initial logit: sigmoid(3) = 0.95, near the clean model
    warmup: float = 0.2
    patience: int = 40
    tol: float = 1e-3
    progress: bool = False
    # hard-concrete gate constants (Louizos et al. 2018)
    beta: float = 2 / 3
    gamma: float = -0.1
    zeta: float = 1.1

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}, got {self.penalty!r}")
        if not self.lam >= 0:
            raise ValueError(f"lam (penalty strength) must be >= 0, got {self.lam}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup must be in [0, 1), got {self.warmup}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")


@dataclass
class IpdTrace:
    """What a run did: steps taken, seconds, final loss terms (for notes and the runner)."""

    steps: int = 0
    seconds: float = 0.0
    faithfulness: float = math.nan
    sparsity: float = math.nan
    stopped_early: bool = False


class _Gates:
    """Coefficients from parameters: plain sigmoid (l1) or hard-concrete gates (l0)."""

    def __init__(self, cfg: IpdConfig, n: int, device) -> None:
        self.cfg = cfg
        self.theta = torch.full((n,), cfg.init, device=device, requires_grad=True)
        self._shift = cfg.beta * math.log(-cfg.gamma / cfg.zeta)

    def sample(self) -> Tensor:
        c = self.cfg
        if c.penalty == "l1":
            return torch.sigmoid(self.theta)
        u = torch.rand_like(self.theta).clamp(1e-6, 1 - 1e-6)
        s = torch.sigmoid((u.log() - (-u).log1p() + self.theta) / c.beta)
        return (s * (c.zeta - c.gamma) + c.gamma).clamp(0, 1)

    def sparsity(self) -> Tensor:
        if self.cfg.penalty == "l1":
            return torch.sigmoid(self.theta).mean()
        return torch.sigmoid(self.theta - self._shift).mean()

    def scores(self) -> Tensor:
        if self.cfg.penalty == "l1":
            return torch.sigmoid(self.theta).detach()
        return torch.sigmoid(self.theta - self._shift).detach()


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


def _faithfulness(problem: Problem, objective: str):
    """A loss function of the masks, normalised to be ~1 for the fully ablated model."""
    if objective == "kl":
        scale = max(problem.divergence_ablated, 1e-12)
        return lambda m: problem.divergence_of(m) / scale
    clean, ablated = problem.metric_clean, problem.metric_ablated
    return lambda m: ((problem.metric_of(m) - clean) / (clean - ablated)) ** 2


def run_ipd(
    problem: Problem,
    cfg: IpdConfig,
    n_params: int | None = None,
    expand: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, IpdTrace]:
    """Optimise the coefficients; return the scores and a trace of the run.

    By default there is one coefficient per edge. ``n_params`` and ``expand`` learn ``n_params``
    coefficients instead and map them to the ``[n_edges]`` masks the model reads (shared or
    fixed edges: ``ipd-hier``); the sparsity term and the returned scores are over the
    parameters.
    """
    gates = _Gates(cfg, problem.n_edges if n_params is None else n_params, problem.model.device)
    to_masks = expand or (lambda m: m)
    opt = torch.optim.Adam([gates.theta], lr=cfg.lr)
    faith = _faithfulness(problem, cfg.objective)
    warm = max(1, int(cfg.warmup * cfg.steps))
    stop = PlateauStop(cfg.tol, cfg.patience)
    trace = IpdTrace()
    t0 = time.perf_counter()
    bar = tqdm(range(cfg.steps), disable=not cfg.progress, desc="ipd")
    for step in bar:
        lam = cfg.lam * min(1.0, (step + 1) / warm)
        f = faith(to_masks(gates.sample()))
        sp = gates.sparsity()
        loss = f + lam * sp
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        trace.steps = step + 1
        trace.faithfulness, trace.sparsity = f.item(), sp.item()
        if cfg.progress:
            bar.set_postfix(faith=f"{trace.faithfulness:.4f}", density=f"{trace.sparsity:.3f}")
        if step + 1 < warm:
            continue
        if stop(loss.item()):
            trace.stopped_early = True
            break
    trace.seconds = time.perf_counter() - t0
    return gates.scores(), trace


@register_method("ipd")
class InterpolatedPatchDescent(Method):
    Config = IpdConfig
    description = (
        "interpolated-patch descent: learn edge coefficients by gradient descent (KL + L1)"
    )

    def scores(self, problem: Problem) -> Tensor:
        scores, self.trace = run_ipd(problem, self.config)
        return scores
