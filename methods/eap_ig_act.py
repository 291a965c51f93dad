"""``eap-ig-act``: EAP-IG-activations (Hanna et al. 2024; hannamw/EAP-IG ``attribute.py``
``get_scores_ig_activations``; MIB's "EAP-IG-activations").

One source block at a time (the embedding, a layer's attention heads together, an MLP), its
output is set to ``alpha * y(clean) + (1 - alpha) * y~`` at ``alpha = k / steps`` for
``k = 1 .. steps`` (as the published code: right Riemann sum) and held fixed (no gradient flows
back through it); the rest of the model runs forward on the clean input. In every such pass
every edge gets the gradient at its destination input dotted with its source's fixed
difference ``y_s(clean) - y~_s``; the scores are the mean over all ``steps x n_blocks`` passes.

Completeness, per block B: the edges out of B, summed over B's own passes, tend to
m(clean) - m(B ablated); the trace's ``completeness_gap`` is sum_B |sum - target| over
sum_B |target|. Default ``steps`` from the measured gaps (``results/ig_gaps.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.base import Method, MethodConfig, register_method
from methods.config import check_types
from methods.integrated import (
    chunk_size,
    clean_minus_ablated,
    edge_sources,
    fixed_difference_gradients,
    metric_of,
    source_blocks,
)
from tasks.problem import Problem

DEFAULT_STEPS = 200


@dataclass(frozen=True)
class EapIgActConfig(MethodConfig):
    steps: int = DEFAULT_STEPS

    def __post_init__(self) -> None:
        check_types(self)
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


@register_method("eap-ig-act")
class EapIgActivations(Method):
    Config = EapIgActConfig
    description = (
        "EAP-IG-activations (Hanna et al. 2024): each block's output interpolated ablated -> "
        f"clean in turn, gradients times fixed differences (default {DEFAULT_STEPS} steps)"
    )

    def scores(self, problem: Problem) -> torch.Tensor:
        k = self.config.steps
        model = problem.model
        device = model.device
        src = edge_sources(problem).to(device)
        delta = clean_minus_ablated(problem)
        alphas = torch.arange(1, k + 1, dtype=model.dtype, device=device) / k
        total = torch.zeros(problem.n_edges, dtype=torch.float64, device=device)
        blocks = source_blocks(problem)
        gap_num = gap_den = 0.0
        for block in blocks:
            block = block.to(device)
            out_of = torch.isin(src, block)
            frozen = torch.zeros(model.graph.n_sources, dtype=torch.bool, device=device)
            frozen[block] = True
            own = torch.zeros(problem.n_edges, dtype=torch.float64, device=device)
            for part in alphas.split(chunk_size(problem)):
                masks = torch.where(out_of, part[:, None], torch.ones_like(part)[:, None])
                grads, _ = fixed_difference_gradients(problem, masks, delta, frozen)
                own += grads.sum(0).double()
            total += own
            with torch.no_grad():  # the block ablated: the start of its path
                start = metric_of(problem, (~out_of).to(model.dtype), problem.ablation).item()
            target = problem.metric_clean - start
            gap_num += abs(own[out_of].sum().item() / k - target)
            gap_den += abs(target)
        scores = (total / (k * len(blocks))).cpu()
        self.trace = {
            "ig_steps": k,
            "completeness_gap": gap_num / gap_den if gap_den else float("nan"),
            "completeness_identity": (
                "per block B: edges out of B over B's passes = m(clean) - m(B ablated); "
                "gap = sum_B |sum - target| / sum_B |target|"
            ),
        }
        return scores.to(model.dtype)
