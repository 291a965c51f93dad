"""``sp``: subnetwork probing on edges (Cao et al. 2021, "Low-complexity probing via finding
subnetworks"; as adapted to circuit discovery in the ACDC paper's comparison, Conmy et al. 2023,
and auto-circuit's subnetwork edge probing).

Every edge gets a hard-concrete gate (Louizos et al. 2018): stochastic and differentiable while
training, exactly 0 or 1 with positive probability. Adam minimises

    KL(patched || clean) / KL(ablated || clean) + lam(t) * expected L0 density

with ``lam`` ramped linearly over the first ``warmup`` of the steps (the loop, the gates and the
plateau stop are :mod:`methods.descent`'s). An edge's score is its gate's probability of being
non-zero (a monotone function of its log alpha), so the ranking is the learned log alpha: the
ACDC paper instead sweeps ``lam`` and reads one binary circuit per run; one run here.

``trace``: the standard keys (``final_loss``: the final normalised KL, ~1 = as far from clean as
the fully ablated model) and :meth:`methods.descent.DescentTrace.summary`'s others.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from methods.base import Method, MethodConfig, Problem, register_method
from methods.config import check_descent_ranges, check_types
from methods.descent import HardConcreteGates, LinearWarmup, PlateauStop, descend
from methods.ipd import faithfulness


@dataclass(frozen=True)
class SpConfig(MethodConfig):
    """``lam``: weight of the expected L0 density (a mean over edges, so it means the same on
    every graph); ``init``: initial log alpha (3: each gate non-zero with probability ~0.96);
    ``beta``/``gamma``/``zeta``: the hard-concrete constants of Louizos et al. 2018."""

    lam: float = 0.05
    steps: int = 300
    lr: float = 0.1
    init: float = 3.0
    warmup: float = 0.2
    patience: int = 40
    tol: float = 1e-3
    beta: float = 2 / 3
    gamma: float = -0.1
    zeta: float = 1.1

    def __post_init__(self) -> None:
        check_types(self)
        check_descent_ranges(self)


@register_method("sp")
class SubnetworkProbing(Method):
    Config = SpConfig
    description = "subnetwork probing: hard-concrete edge gates, KL + lam * expected L0"

    def scores(self, problem: Problem) -> Tensor:
        c = self.config
        gates = HardConcreteGates(
            problem.n_edges, c.init, problem.model.device, beta=c.beta, gamma=c.gamma, zeta=c.zeta
        )
        trace = descend(
            gates,
            faithfulness(problem, "kl"),
            LinearWarmup.over(c.lam, c.warmup, c.steps),
            steps=c.steps,
            lr=c.lr,
            stop=PlateauStop(c.tol, c.patience),
        )
        self.trace = trace.summary()
        return gates.scores()
