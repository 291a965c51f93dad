"""``edge-pruning``: Edge Pruning (Bhaskar et al. 2024, "Finding Transformer Circuits with Edge
Pruning").

Every edge gets a hard-concrete gate (Louizos et al. 2018). Instead of a fixed L0 weight, a
*target density* ``t`` is enforced by a Lagrangian ``l1 (d - t) + l2 (d - t)^2`` on the expected
density ``d``, whose multipliers are learned by maximisation while the gates minimise
``KL(patched || clean) / KL(ablated || clean)`` plus that term; the target is ramped linearly
from 1 (the whole model) to ``t`` over the first ``warmup`` of the steps
(:class:`methods.descent.LagrangianTarget`, after CoFi, Xia et al. 2022, which the paper
follows). At evaluation the gates are deterministic (``clamp(sigmoid(log alpha) (zeta - gamma) +
gamma, 0, 1)``) and a run's circuit is its ``round(t * n_edges)`` edges with the largest log
alpha (at least one).

Every run takes all ``steps`` (no plateau stop: the loss keeps changing while the multipliers
grow). One run per target density, as the paper trains one circuit per sparsity. The benchmark needs
one ranking, so the runs' circuits are merged: an edge's score is the number of runs whose
circuit holds it, plus its mean deterministic gate over the runs times 0.99 (< 1, so it only
orders edges held by equally many circuits). Nested circuits (each density's circuit inside the
next one's) make the ranking reproduce every run's circuit exactly; when they are not nested
the count still orders by how often an edge was chosen.

``trace``: ``runs`` holds each run's summary (with its ``target``, the expected density
``final_density`` and the share of non-zero deterministic gates ``density``); ``steps`` and
``seconds`` add up; ``stopped_early`` is false; ``final_loss`` is the normalised KL of the
densest run (the most faithful circuit: if even that one is far from clean, the method failed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from methods.base import Method, register_method
from methods.config import check_descent_ranges, check_types
from methods.descent import DescentConfig, LagrangianTarget, descend, faithfulness
from tasks.problem import Problem


@dataclass(frozen=True)
class EdgePruningConfig(DescentConfig):
    """The fields of :class:`methods.descent.DescentConfig` (``steps`` 300, ``lr`` 0.1,
    ``init`` 3.0: the initial log alpha, the hard-concrete constants; ``warmup`` below) and:
    ``densities``: the target densities, one run each (fractions of edges in (0, 1]);
    ``warmup``: the fraction of steps over which the target ramps from 1 down to its value;
    ``lagrangian_lr``: the multipliers' ascent rate."""

    densities: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5)
    lagrangian_lr: float = 0.5
    warmup: float = 0.5

    def __post_init__(self) -> None:
        check_types(self)
        if not self.densities or any(not 0 < d <= 1 for d in self.densities):
            raise ValueError(
                f"densities must be a non-empty tuple of fractions in (0, 1], got {self.densities}"
            )
        check_descent_ranges(self)
        if not self.lagrangian_lr > 0:
            raise ValueError(f"lagrangian_lr must be > 0, got {self.lagrangian_lr}")


def top_k_mask(values: Tensor, k: int) -> Tensor:
    """Boolean mask of the ``k`` largest ``values`` (ties broken by index, lowest first)."""
    mask = torch.zeros(values.numel(), dtype=torch.bool)
    mask[torch.argsort(-values.cpu(), stable=True)[:k]] = True
    return mask


@register_method("edge-pruning")
class EdgePruning(Method):
    Config = EdgePruningConfig
    description = "Edge Pruning: hard-concrete edge gates at a target density (Lagrangian), merged"

    def prune(self, problem: Problem, density: float) -> tuple[Tensor, Tensor, dict]:
        """One run at ``density``: its circuit (bool), its deterministic gates and its summary."""
        c = self.config
        n = problem.n_edges
        gates = c.hard_concrete_gates(n, problem.model.device)
        target = LagrangianTarget(density, max(1, int(c.warmup * c.steps)), c.lagrangian_lr)
        run = descend(
            gates,
            faithfulness(problem, "kl"),
            target,
            steps=c.steps,
            lr=c.lr,
        )
        gate = gates.deterministic().cpu()
        circuit = top_k_mask(gates.theta.detach(), max(1, round(density * n)))
        summary = {"target": density, **run.summary(), "density": gate.gt(0).float().mean().item()}
        return circuit, gate, summary

    def scores(self, problem: Problem) -> Tensor:
        count = torch.zeros(problem.n_edges)
        gate_sum = torch.zeros(problem.n_edges)
        runs = []
        for density in sorted(self.config.densities):
            circuit, gate, summary = self.prune(problem, density)
            count += circuit.float()
            gate_sum += gate
            runs.append(summary)
        self.trace = {
            "steps": sum(r["steps"] for r in runs),
            "stopped_early": all(r["stopped_early"] for r in runs),
            "final_loss": runs[-1]["final_loss"],
            "seconds": sum(r["seconds"] for r in runs),
            "runs": runs,
        }
        return count + 0.99 * gate_sum / len(runs)
