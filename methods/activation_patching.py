"""``activation-patching``: the exact effect of each edge alone.

For every edge, ablate that edge only and measure the drop in the task metric,
``m(clean) - m(all edges but e)``. Edges are evaluated in chunks through the batched
``[n_masks, n_edges]`` form, so one forward pass evaluates a whole chunk of edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.base import Method, MethodConfig, register_method
from methods.config import check_types
from tasks.problem import Problem


@dataclass(frozen=True)
class ActivationPatchingConfig(MethodConfig):
    max_rows: int = 2048  # n_masks * batch per forward pass (memory bound)

    def __post_init__(self) -> None:
        check_types(self)
        if self.max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {self.max_rows}")


@register_method("activation-patching")
class ActivationPatching(Method):
    Config = ActivationPatchingConfig
    description = "exact per-edge ablation effect on the task metric, batched over edges"

    @torch.no_grad()
    def scores(self, problem: Problem) -> torch.Tensor:
        E, device = problem.n_edges, problem.model.device
        clean = problem.metric_clean
        chunk = max(1, self.config.max_rows // problem.data.n)
        out = torch.empty(E)
        for start in range(0, E, chunk):
            idx = torch.arange(start, min(E, start + chunk), device=device)
            masks = torch.ones(len(idx), E, device=device)
            masks[torch.arange(len(idx), device=device), idx] = 0.0
            out[start : start + len(idx)] = (clean - problem.metric_of(masks)).cpu()
        return out
