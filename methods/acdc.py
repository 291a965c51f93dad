"""``acdc``: Automatic Circuit DisCovery (Conmy et al. 2023), edge-level greedy pruning.

Start from the full graph. Visit destinations from the output backwards (logits, then each
layer's MLP and heads, last layer first) and, for each destination, its incoming edges from the
latest source to the earliest: remove the edge if the divergence from the clean output (KL at
the answer positions, or the task's own divergence) rises by less than ``tau``; otherwise keep
it. The flat edge order of :mod:`patching.graph` is ascending by destination layer, so the visit
order is simply the reversed edge index.

One run gives a binary circuit. To compare rankings, the method sweeps ``tau`` over
``n_thresholds`` log-spaced values between ``tau_min`` and ``tau_max`` times the divergence of
the fully ablated model; an edge's score is the largest tau at which it survives (0 if never),
so each ROC point of the score ranking is one ACDC run, as in the ACDC paper's ROC curves.
Not implemented: ACDC's removal of nodes that become disconnected (it doesn't change which
edges are kept for the metric, only the reported circuit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from methods.base import Method, MethodConfig, register_method
from methods.config import check_types
from tasks.problem import Problem


@dataclass(frozen=True)
class AcdcConfig(MethodConfig):
    n_thresholds: int = 8
    tau_min: float = 1e-4
    tau_max: float = 0.3
    progress: bool = False

    def __post_init__(self) -> None:
        check_types(self)
        if self.n_thresholds < 1:
            raise ValueError(f"n_thresholds must be >= 1, got {self.n_thresholds}")
        if not 0 < self.tau_min <= self.tau_max:
            raise ValueError("need 0 < tau_min <= tau_max (relative to the ablated divergence)")


@torch.no_grad()
def acdc_circuit(problem: Problem, tau: float, progress: bool = False) -> torch.Tensor:
    """One ACDC run at absolute threshold ``tau``: the binary mask of kept edges."""
    masks = torch.ones(problem.n_edges, device=problem.model.device)
    current = problem.divergence_clean
    for e in tqdm(
        range(problem.n_edges - 1, -1, -1), disable=not progress, desc=f"acdc tau={tau:.2g}"
    ):
        masks[e] = 0.0
        new = problem.divergence_of(masks).item()
        if new - current < tau:
            current = new
        else:
            masks[e] = 1.0
    return masks


@register_method("acdc")
class Acdc(Method):
    Config = AcdcConfig
    description = "ACDC greedy edge pruning from the output backwards, swept over thresholds tau"
    threshold_swept = True  # each distinct score is one tau run

    def thresholds(self, problem: Problem) -> np.ndarray:
        c = self.config
        return problem.divergence_ablated * np.geomspace(c.tau_min, c.tau_max, c.n_thresholds)

    def scores(self, problem: Problem) -> torch.Tensor:
        scores = torch.zeros(problem.n_edges)
        for tau in self.thresholds(problem):  # ascending: later (larger) taus overwrite
            kept = acdc_circuit(problem, float(tau), self.config.progress).cpu().bool()
            scores[kept] = float(tau)
        return scores
