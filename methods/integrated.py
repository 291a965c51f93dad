"""Shared code of the integrated-gradients edge methods (``eap-ig``, ``eap-ig-act``, ``ieg``).

All three average, over points ``alpha`` of a path from the ablated to the clean model, the
gradient of the mean task metric with respect to every destination input ``x_d`` and dot it
with a source's difference (summed over positions, averaged over examples). They differ in the
path and in the difference:

- ``ieg`` (auto-circuit's integrated edge gradients): every edge mask at ``alpha``; the
  difference is the *current pass's* ``y_s - y~_s``, so the scores are the mask gradients.
- ``eap-ig`` (EAP-IG-inputs, Hanna et al. 2024): the input embedding interpolated; the
  difference is each source's *fixed* clean-minus-ablated ``y_s(clean) - y~_s``.
- ``eap-ig-act`` (EAP-IG-activations): one source block's output interpolated at a time.

The fixed difference is obtained with the one-pass patched forward (``patching.patched``): a
mask gradient at an edge is ``(y_s(current) - a_s) . dm/dx_d`` where ``a_s`` is the value the
edge patches against. A first no-grad pass records ``y_s(current)`` on the path; the gradient
pass then patches against ``a_s = y_s(current) - Delta_s`` (the same forward values at masks
1), so its mask gradients are ``Delta_s . dm/dx_d``.

Completeness (the integrated-gradients axiom; Sundararajan et al. 2017): the scores of the
edges out of the interpolated block sum to the metric change along the path. Each method's
trace records ``completeness_gap`` = |sum - target| / |target| for its own identity.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from patching.patched import AblatedSources
from tasks.problem import Problem

# Elements (n_masks * n_sources * batch * pos * d_model) one batched pass may hold per tensor.
CHUNK_ELEMENTS = 2**25


def edge_sources(problem: Problem) -> Tensor:
    """The source index of every edge, ``[n_edges]`` (in the graph's edge order)."""
    g = problem.model.graph
    index = {s: i for i, s in enumerate(g.sources)}
    per_pair = torch.tensor([index[s] for s, _ in g.edge_pairs], dtype=torch.long)
    return per_pair.repeat_interleave(g.n_pos)


def source_blocks(problem: Problem) -> list[Tensor]:
    """The blocks of sources a pass can hold fixed: the embedding, each layer's heads, each MLP
    (EAP-IG's nodes ``input``, ``a{l}.h0`` for the whole layer's attention, ``m{l}``)."""
    g = problem.model.graph
    blocks = [torch.tensor([0])]
    for layer in range(g.n_layers):
        start = 1 + layer * g.srcs_per_layer
        blocks.append(torch.arange(start, start + g.n_heads))
        if g.has_mlp:
            blocks.append(torch.tensor([start + g.n_heads]))
    return blocks


def logit_positions(problem: Problem) -> Tensor | None:
    """The positions the task's metric reads (None: all), as ``Problem.run`` unembeds them."""
    read = problem.data.answer_mask.any(0)
    return None if read.all() else read.nonzero().flatten()


def chunk_size(problem: Problem) -> int:
    """How many path points one batched pass takes."""
    shape = problem.ablation.values.shape
    B, P = problem.data.clean.shape
    per_point = problem.model.graph.n_sources * B * P * shape[-1]
    return max(1, CHUNK_ELEMENTS // per_point)


def metric_of(problem: Problem, masks: Tensor, ablation: AblatedSources, **kw) -> Tensor:
    """Mean task metric ``[K]`` of the patched model under ``masks`` ``[K, n_edges]``."""
    logits = problem.model(
        problem.data.clean,
        masks,
        ablation,
        logit_positions=logit_positions(problem),
        attention_mask=problem.data.attention_mask,
        **kw,
    )
    return problem.metric(logits, problem.data).mean(-1)


def fixed_difference_gradients(
    problem: Problem, masks: Tensor, delta: Tensor, frozen: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Per mask row: ``sum over (b, p) of delta_s . d(mean metric)/d x_d`` for every edge
    ``s -> d`` at the patched model ``masks`` ``[K, n_edges]`` (patching against the problem's
    ablation), and the metric there ``[K]``. ``delta``: ``[n_src, b | 1, pos, d]``.
    ``frozen``: sources through which no gradient flows back (see ``PatchableModel.forward``).
    """
    model, clean = problem.model, problem.data.clean
    current = model.source_outputs(  # [K, n_src, b, p, d]
        clean, masks, problem.ablation, attention_mask=problem.data.attention_mask
    )
    against = model.ablated_sources(current - delta.unsqueeze(0), kind="fixed-difference")
    m = masks.detach().clone().requires_grad_(True)
    value = metric_of(problem, m, against, frozen=frozen)
    value.sum().backward()
    return m.grad, value.detach()


def clean_minus_ablated(problem: Problem) -> Tensor:
    """Each source's fixed difference ``y_s(clean) - y~_s`` ``[n_src, b, pos, d]``."""
    outputs = problem.model.source_outputs(
        problem.data.clean, attention_mask=problem.data.attention_mask
    )
    return outputs - problem.ablation.values


def chunks(alphas: Tensor, size: int) -> list[Tensor]:
    return list(alphas.split(size))


def relative_gap(total: float, target: float) -> float:
    """|total - target| / |target| (NaN when the target is 0)."""
    if target == 0:
        return math.nan
    return abs(total - target) / abs(target)


def completeness_trace(total: float, target: float, identity: str, steps: int) -> dict:
    """The trace keys every integrated-gradients method records."""
    return {
        "ig_steps": steps,
        "completeness_sum": total,
        "completeness_target": target,
        "completeness_gap": relative_gap(total, target),
        "completeness_identity": identity,
    }
