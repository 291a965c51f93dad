"""``eap``: edge attribution patching (Nanda 2023; Syed et al. 2023).

Score of ``s -> d`` = (y_s - y~_s) . d metric / d x_d, summed over positions and averaged over
examples: the first-order estimate of how much the metric drops when the edge is ablated. By
the interpolation contract ``x_d = base + sum_s m_sd (y_s - y~_s)``, this is exactly the
gradient of the mean metric with respect to the masks at m = 1, so one clean forward and one
backward give every edge's score.
"""

from __future__ import annotations

import torch

from methods.base import Method, register_method
from tasks.problem import Problem


def metric_gradient(problem: Problem, masks: torch.Tensor) -> torch.Tensor:
    """d(mean metric)/d masks at each row of ``masks`` [k, n_edges] (one batched pass)."""
    masks = masks.detach().clone().requires_grad_(True)
    problem.metric_of(masks).sum().backward()
    return masks.grad


@register_method("eap")
class EdgeAttributionPatching(Method):
    description = (
        "edge attribution patching: gradient of the task metric w.r.t. the edge masks at m=1"
    )

    def scores(self, problem: Problem) -> torch.Tensor:
        ones = torch.ones(1, problem.n_edges, device=problem.model.device)
        return metric_gradient(problem, ones)[0]
