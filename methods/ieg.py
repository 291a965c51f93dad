"""``ieg``: integrated edge gradients (auto-circuit; Miller et al. 2024, ``prune_algos``
"integrated_edge_gradients"), the method this suite called ``eap-ig`` before issue 15.

Integrates the gradient of the metric with respect to the edge masks along the path on which
*every* mask goes from 0 (ablated) to 1 (clean) together; at each point the difference an edge
is multiplied by is the current pass's ``y_s - y~_s``. Midpoint rule with ``steps`` points,
batched. By completeness the scores of all edges sum to m(clean) - m(ablated); the trace
records the relative gap (``completeness_gap``). Not Hanna et al.'s EAP-IG: see
``methods.eap_ig``. Default ``steps`` from the measured gaps in ``results/ig_gaps.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.base import Method, MethodConfig, register_method
from methods.config import check_types
from methods.eap import metric_gradient
from methods.integrated import chunk_size, completeness_trace
from tasks.problem import Problem

DEFAULT_STEPS = 200


@dataclass(frozen=True)
class IegConfig(MethodConfig):
    steps: int = DEFAULT_STEPS

    def __post_init__(self) -> None:
        check_types(self)
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


@register_method("ieg")
class IntegratedEdgeGradients(Method):
    Config = IegConfig
    description = (
        "integrated edge gradients (auto-circuit): mask gradients integrated along all masks "
        f"0 -> 1 together (midpoint rule, default {DEFAULT_STEPS} points)"
    )

    def scores(self, problem: Problem) -> torch.Tensor:
        k = self.config.steps
        alphas = (torch.arange(k, dtype=torch.float32) + 0.5) / k
        total = torch.zeros(problem.n_edges, dtype=torch.float64)
        for part in alphas.split(chunk_size(problem)):
            masks = part[:, None].expand(len(part), problem.n_edges).to(problem.model.device)
            total += metric_gradient(problem, masks).sum(0).double().cpu()
        scores = total / k
        self.trace = completeness_trace(
            scores.sum().item(),
            problem.metric_clean - problem.metric_ablated,
            "sum of all edges = m(clean) - m(ablated)",
            k,
        )
        return scores.to(problem.model.dtype)
