"""``eap-ig``: EAP-IG-inputs (Hanna, Pezzelle & Belinkov 2024, "Have Faith in Faithfulness";
code hannamw/EAP-IG, ``attribute.py`` ``get_scores_eap_ig``; the method MIB's README recommends
trying first).

The input embedding is interpolated between the ablated and the clean one,
``e(alpha) = e~ + alpha (e - e~)`` at ``alpha = k / steps`` for ``k = 0 .. steps-1`` (as the
published code: left Riemann sum), the model runs forward from it, and the gradient of the
metric at every destination input is dotted with each source's *fixed* difference
``y_s(clean) - y~_s`` and averaged over the steps. MIB's default is 5 steps; ours is chosen by
the measured completeness gap on every shipped task (``results/ig_gaps.md``).

Sign: EAP-IG multiplies by corrupted - clean and its metrics are losses; we use clean -
ablated with a metric where higher is better, so a score is the estimated metric *drop* when
the edge is ablated (the same convention as ``eap``). Under resample ablation ``e~`` is the
corrupted input's embedding; under mean or zero ablation it is the ablated embedding value.

Completeness: the edges out of ``embed`` sum to m(clean) - m(embedding ablated) as steps grow
(under resample ablation that endpoint is the ablated model); the trace records the gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.base import Method, MethodConfig, register_method
from methods.config import check_types
from methods.integrated import (
    chunk_size,
    clean_minus_ablated,
    completeness_trace,
    edge_sources,
    fixed_difference_gradients,
)
from tasks.problem import Problem

DEFAULT_STEPS = 20


@dataclass(frozen=True)
class EapIgConfig(MethodConfig):
    steps: int = DEFAULT_STEPS

    def __post_init__(self) -> None:
        check_types(self)
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


@register_method("eap-ig")
class EapIgInputs(Method):
    Config = EapIgConfig
    description = (
        "EAP-IG-inputs (Hanna et al. 2024): input embeddings interpolated ablated -> clean, "
        f"gradients times fixed clean-ablated differences (default {DEFAULT_STEPS} steps)"
    )

    def scores(self, problem: Problem) -> torch.Tensor:
        k = self.config.steps
        device = problem.model.device
        from_embed = (edge_sources(problem) == 0).to(device)
        delta = clean_minus_ablated(problem)
        alphas = torch.arange(k, dtype=problem.model.dtype, device=device) / k
        total = torch.zeros(problem.n_edges, dtype=torch.float64, device=device)
        start = None
        for part in alphas.split(chunk_size(problem)):
            masks = torch.where(from_embed, part[:, None], torch.ones_like(part)[:, None])
            grads, values = fixed_difference_gradients(problem, masks, delta)
            total += grads.sum(0).double()
            if start is None:
                start = values[0].item()  # alpha = 0: the embedding ablated
        scores = (total / k).cpu()
        self.trace = completeness_trace(
            scores[from_embed.cpu()].sum().item(),
            problem.metric_clean - start,
            "sum of edges out of embed = m(clean) - m(embedding ablated)",
            k,
        )
        return scores.to(problem.model.dtype)
