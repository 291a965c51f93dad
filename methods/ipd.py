"""``ipd``: interpolated-patch descent, the project's central method.

Every edge gets a keep coefficient ``m = sigmoid(theta)`` that interpolates between its clean
and ablated activation (:mod:`patching.patched`); gradient descent on ``theta`` minimises

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

The loop, the gates and the stop rule are :mod:`methods.descent`'s. The ranking is ``rank``
(:mod:`methods.ipd_rank`): by default (``pruning``, chosen by measurement in issue 13) the step
at which each edge leaves the circuit along the descent, ties and the final circuit ordered by
``|d metric / d m|`` at the learned masks; ``coefficient`` (the learned coefficients; for ``l0``
each gate's probability of being non-zero) is the old default, kept as ``ipd-classic`` (with
its ``lam`` 0.05 and ``lr`` 0.1; the default ``lam`` 0.01 and ``lr`` 0.05 converge on the
saturated tracr-reverse model, where ``lam`` 0.05 ends at normalised KL 0.79 and ``lr`` 0.1
stalls at 0.76 on the train split). After a run, ``trace`` holds the standard keys
(``steps``, ``stopped_early``, ``final_loss``: the final normalised faithfulness loss, ~1 = as
far from clean as the fully ablated model), :meth:`DescentTrace.summary`'s others
(``final_density``, ``seconds``, ...), ``rank`` and ``in_circuit`` (coefficients >=
``threshold`` at the end).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from methods.base import Method, register_method
from methods.config import check_descent_ranges, check_types
from methods.descent import (
    OBJECTIVES,
    DescentTrace,
    Gates,
    PenaltyDescentConfig,
    SigmoidGates,
    descend,
    faithfulness,
)
from methods.ipd_rank import RANKS, ExitTracker, attribution, exit_scores
from tasks.problem import Problem


def _sigmoid_gates(cfg: IpdConfig, n: int, device) -> Gates:
    return SigmoidGates(n, cfg.init, device)


def _hard_concrete_gates(cfg: IpdConfig, n: int, device) -> Gates:
    return cfg.hard_concrete_gates(n, device)


GATES: dict[str, Callable[[IpdConfig, int, object], Gates]] = {
    "l1": _sigmoid_gates,
    "l0": _hard_concrete_gates,
}
PENALTIES = tuple(GATES)


@dataclass(frozen=True)
class IpdConfig(PenaltyDescentConfig):
    """The fields of :class:`methods.descent.PenaltyDescentConfig` (``steps`` 300, ``init`` 3.0,
    ``warmup`` 0.2, ``patience`` 40, ``tol`` 1e-3, the hard-concrete constants; ``lam`` and
    ``lr`` below) and ipd's own."""

    objective: str = "kl"
    penalty: str = "l1"
    lam: float = 0.01  # 0.05 before issue 13 (ipd-classic): too strong on saturated tracr models
    # 0.1 before this stop: on tracr-reverse (zero ablation, train split) it stalled at
    # normalised KL 0.76 and the plateau stop ended it; 0.05 converges on every shipped task
    lr: float = 0.05
    progress: bool = False
    # how the finished run ranks edges (methods.ipd_rank): "pruning", "attribution",
    # "coefficient" (ipd-classic); threshold: the coefficient at which an edge leaves the circuit
    rank: str = "pruning"
    threshold: float = 0.5

    def __post_init__(self) -> None:
        check_types(self)
        if self.rank not in RANKS:
            raise ValueError(f"rank must be one of {RANKS}, got {self.rank!r}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}, got {self.penalty!r}")
        check_descent_ranges(self)


def run_ipd(
    problem: Problem,
    cfg: IpdConfig,
    n_params: int | None = None,
    expand: Callable[[Tensor], Tensor] | None = None,
    after_step=None,
) -> tuple[Tensor, DescentTrace]:
    """Optimise the coefficients; return the scores and a trace of the run.

    By default there is one coefficient per edge. ``n_params`` and ``expand`` learn ``n_params``
    coefficients instead and map them to the ``[n_edges]`` masks the model reads (shared or
    fixed edges: ``ipd-hier``); the sparsity term and the returned scores are over the
    parameters. ``after_step(gates)`` (optional) builds a :func:`descend` ``after_step`` hook
    from the gates. The returned scores are the coefficients (``cfg.rank`` is applied by the
    ``ipd`` method, not here).
    """
    n = problem.n_edges if n_params is None else n_params
    gates = GATES[cfg.penalty](cfg, n, problem.model.device)
    trace = descend(
        gates,
        faithfulness(problem, cfg.objective),
        cfg.schedule(),
        steps=cfg.steps,
        lr=cfg.lr,
        stop=cfg.plateau_stop(),
        expand=expand,
        after_step=None if after_step is None else after_step(gates),
        progress="ipd" if cfg.progress else None,
    )
    return gates.scores(), trace


def learned_masks(scores: Tensor, cfg: IpdConfig) -> Tensor:
    """The masks the model reads at the end of a run from ``run_ipd``'s scores: the sigmoid
    coefficients themselves (``l1``); for ``l0`` the deterministic hard-concrete gates."""
    if cfg.penalty == "l1":
        return scores
    theta = torch.logit(scores.clamp(1e-7, 1 - 1e-7)) + cfg.beta * math.log(-cfg.gamma / cfg.zeta)
    return (torch.sigmoid(theta) * (cfg.zeta - cfg.gamma) + cfg.gamma).clamp(0, 1)


def ranked_ipd(problem: Problem, cfg: IpdConfig) -> tuple[Tensor, DescentTrace, dict]:
    """Run ipd and rank its edges by ``cfg.rank`` (methods.ipd_rank); also return the extra
    trace keys of the ranking (``in_circuit``: edges at or above the threshold at the end)."""
    tracker: list[ExitTracker] = []

    def track(gates: Gates) -> ExitTracker:
        tracker.append(ExitTracker(gates.scores, problem.n_edges, cfg.threshold))
        return tracker[0]

    coef, trace = run_ipd(problem, cfg, after_step=track if cfg.rank == "pruning" else None)
    extra = {"rank": cfg.rank, "in_circuit": int((coef >= cfg.threshold).sum().item())}
    if cfg.rank == "coefficient":
        return coef, trace, extra
    attr = attribution(problem, learned_masks(coef, cfg))
    if cfg.rank == "attribution":
        return attr, trace, extra
    return exit_scores(tracker[0].last_in, attr, coef), trace, extra


@register_method("ipd")
class InterpolatedPatchDescent(Method):
    Config = IpdConfig
    description = (
        "interpolated-patch descent: learn edge coefficients by gradient descent (KL + L1)"
    )

    def scores(self, problem: Problem) -> Tensor:
        scores, trace, extra = ranked_ipd(problem, self.config)
        self.trace = {**trace.summary(), **extra}
        return scores


@register_method("ipd-classic")
class ClassicIpd(InterpolatedPatchDescent):
    """The default ``ipd`` before issue 13: ``lam`` 0.05, ``lr`` 0.1, scores are the learned
    coefficients."""

    @dataclass(frozen=True)
    class Config(IpdConfig):
        lam: float = 0.05
        lr: float = 0.1
        rank: str = "coefficient"

    description = "interpolated-patch descent ranked by its learned coefficients (old default)"
