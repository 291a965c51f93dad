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

from methods.base import Method, register_method
from methods.descent import PenaltyDescentConfig, descend, faithfulness
from tasks.problem import Problem


@dataclass(frozen=True)
class SpConfig(PenaltyDescentConfig):
    """The fields of :class:`methods.descent.PenaltyDescentConfig` with its defaults (``lam``
    0.05, ``steps`` 300, ``lr`` 0.1, ``init`` 3.0, ``warmup`` 0.2, ``patience`` 40, ``tol``
    1e-3). ``lam``: weight of the expected L0 density (a mean over edges, so it means the same
    on every graph); ``init``: initial log alpha (3: each gate non-zero with probability
    ~0.96); ``beta``/``gamma``/``zeta``: the hard-concrete constants of Louizos et al. 2018."""


@register_method("sp")
class SubnetworkProbing(Method):
    Config = SpConfig
    description = "subnetwork probing: hard-concrete edge gates, KL + lam * expected L0"

    def scores(self, problem: Problem) -> Tensor:
        c = self.config
        gates = c.hard_concrete_gates(problem.n_edges, problem.model.device)
        trace = descend(
            gates,
            faithfulness(problem, "kl"),
            c.schedule(),
            steps=c.steps,
            lr=c.lr,
            stop=c.plateau_stop(),
        )
        self.trace = trace.summary()
        return gates.scores()
