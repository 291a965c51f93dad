"""``ugs``: Uniform Gradient Sampling, the mask-learning baseline of MIB's circuit track.

Sources: Li & Janson 2024, "Optimal ablation for interpretability" (NeurIPS 2024,
arXiv:2409.09951), which introduced UGS, and Mueller et al. 2025, "MIB: A Mechanistic
Interpretability Benchmark", whose circuit track reports it as a baseline. Code read for the
defining numbers: alestolfo/optimalablation ``edge_pruning_unif_mib.py`` (the script MIB's
README names, run with ``reg_lamb`` 0.001), ``mask_samplers/EdgeMaskSampler.py``
(``EdgeMaskUnifSampler``), ``mask_samplers/MaskSampler.py``, ``utils/MaskConfig.py``,
``pruners/Pruner.py``; and hannamw/MIB-circuit-track ``convert_mask_to_graph.py`` (edge score
= ``sigmoid(theta)``). This file is our own code on the one-pass patched forward.

The algorithm. Every edge ``e`` has a logit ``theta_e``; ``p_e = sigmoid(theta_e)`` is the
probability that the edge is kept, and the objective is the expected loss of a *binary* circuit
drawn edge by edge from Bernoulli(p) plus ``lam`` times the expected number of kept edges
(``sum_e p_e``). Its gradient needs ``d E[L] / d p_e = E[L | m_e = 1] - E[L | m_e = 0]``, and
because the patched forward interpolates an edge linearly (``m_e`` in [0, 1]), that difference
is ``integral_0^1 dL/dm_e dm_e = E_{m_e ~ U[0, 1]}[dL/dm_e]``: the gradient is sampled at a
*uniformly drawn* mask value. One draw per edge and mask sample, ``u ~ U[0, 1]``:

    w = window * p (1 - p)                       (the window's width, no gradient)
    m = clamp((p - u) / w + 1/2, 0, 1)

so ``m = 1`` with probability ``p - w/2``, ``m = 0`` with probability ``1 - p - w/2``, and in
between (probability ``w``) ``m`` is uniform on [0, 1]; ``E[m] = p``. Gradient flows only
through the draws inside the window, as ``dm/dtheta = p (1 - p)`` (the published code's scale
invariant form); with ``normalize`` each edge's gradient is divided by the share of its draws
that fell inside the window (published: ``normalize_empirical_mask``), which turns the sum into
the mean of ``dL/dm`` over uniform draws, i.e. the estimate of ``d E[L] / d theta`` above.
With ``prune_dangling`` each drawn circuit (edges with ``m > 0``) is pruned of dangling edges
before the forward (published: ``prune_dangling_edges`` on every sample). Scores: ``p =
sigmoid(theta)`` at the end (``convert_mask_to_graph.py``).

Published settings (MIB's UGS run: ``edge_pruning_unif_mib.py`` with ``reg_lamb`` 1e-3 and
counterfactual, i.e. patching, ablation) and ours:

- init: ``theta`` 1 (p 0.73) in both.
- loss: published, KL(clean || patched) at the last position in raw nats, mean over rows; ours,
  the task's divergence (KL(clean || patched) at the answer positions) divided by its value for
  the fully ablated model, mean over the mask samples (as ``sp``, ``edge-pruning``, ``ipd``).
- sparsity: published, ``lam * sum_e p_e`` with ``lam`` 1e-3, plus a node term
  ``min(lam / 2, 2e-4) * sum_heads tanh(...)`` over the keep probabilities into and out of each
  head; ours, ``lam * mean_e p_e`` (a mean, the same on every graph) with ``lam`` 0.01, no node
  term. With our normalised loss the published weight is ``1e-3 * n_edges / KL(ablated)`` of
  ours (GPT-2 small, 32,491 edges: ~32 / KL(ablated) in nats).
- optimiser: published, AdamW, betas (0.9, 0.995), no weight decay, lr 0.05 / 5 = 0.01 (the
  rate at ``lam`` > 5e-4, divided by 5 under counterfactual ablation); ours, the Adam of
  :func:`methods.descent.descend` (betas (0.9, 0.999)), ``lr`` 0.05.
- gradient clipping: published, norm 5 per edge type (attn-attn, mlp-attn, attn-mlp, mlp-mlp);
  ours, norm ``clip`` 5 over all logits together.
- mask draws: published, one per (sample, example) row, 12 samples x batch 5 = 60 rows a step;
  ours, ``samples`` 8 masks a step, each applied to the whole train batch.
- steps: published, one pass over the training data (IOI: 9,500 / 5 = 1,900); ours 300. No
  early stop in either.
- positions: published, the BOS position is never patched; ours patches every position (the
  project's graph).

``trace``: the standard keys (``final_loss``: the mean normalised divergence of the last
step's sampled circuits), :meth:`methods.descent.DescentTrace.summary`'s others, ``samples``
and ``in_window``: the share of draws inside the window at the last step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from methods.base import Method, register_method
from methods.config import check_descent_ranges, check_types
from methods.descent import DescentConfig, LinearWarmup, SigmoidGates, descend, faithfulness
from patching.prune import NodeIndex, prune_dangling
from tasks.problem import Problem


@dataclass(frozen=True)
class UgsConfig(DescentConfig):
    """UGS's hyperparameters (published values in the module docstring).

    ``steps`` (300) of Adam at ``lr`` (0.05), gradient norm clipped to ``clip`` (5; None: no
    clipping); ``init`` (1.0): initial logit, every edge kept with probability 0.73; ``lam``
    (0.01): weight of the mean keep probability (the expected density); ``warmup`` (0): the
    fraction of steps over which ``lam`` ramps up (published: none); ``samples`` (8): mask draws
    per step; ``window`` (1): width of the uniform window in units of ``p (1 - p)`` (published
    ``temp_scale`` 1); ``normalize`` (True): divide each edge's gradient by the share of its
    draws inside the window; ``prune_dangling`` (True): prune every drawn circuit of dangling
    edges before the forward. The hard-concrete constants inherited from
    :class:`methods.descent.DescentConfig` are not used."""

    steps: int = 300
    lr: float = 0.05
    init: float = 1.0
    warmup: float = 0.0
    lam: float = 0.01
    samples: int = 8
    window: float = 1.0
    normalize: bool = True
    prune_dangling: bool = True
    clip: float | None = 5.0

    def __post_init__(self) -> None:
        check_types(self)
        check_descent_ranges(self)
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if not 0 < self.window <= 2:
            raise ValueError(f"window must be in (0, 2] (E[m] = p needs it), got {self.window}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"clip must be > 0 or None, got {self.clip}")


class UniformGates(SigmoidGates):
    """``p = sigmoid(theta)``; ``sample()`` draws ``samples`` masks ``[samples, n]`` with UGS's
    uniform window (module docstring); ``penalty()`` is the mean of ``p`` and ``scores()`` is
    ``p`` (:class:`methods.descent.SigmoidGates`)."""

    def __init__(
        self,
        n: int,
        init: float,
        device: torch.device | str | None = None,
        *,
        samples: int = 8,
        window: float = 1.0,
        normalize: bool = True,
        nodes: NodeIndex | None = None,
    ) -> None:
        super().__init__(n, init, device)
        self.samples, self.window, self.normalize, self.nodes = samples, window, normalize, nodes
        self.in_window = float("nan")  # share of draws inside the window at the last sample()

    def draw(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """The mask values for uniform draws ``u`` ``[k, n]`` (no gradient) and which draws fell
        inside the window (bool)."""
        with torch.no_grad():
            p = torch.sigmoid(self.theta)
            width = (self.window * p * (1 - p)).clamp_min(torch.finfo(p.dtype).tiny)
            value = ((p - u) / width + 0.5).clamp(0, 1)
        return value, (value > 0) & (value < 1)

    def sample(self) -> Tensor:
        u = torch.rand(self.samples, self.theta.numel(), device=self.theta.device)
        value, inside = self.draw(u)
        weight = inside.to(value.dtype)
        self.in_window = weight.mean().item()
        if self.normalize:  # the mean of dL/dm over an edge's draws inside the window
            share = weight.mean(0)
            weight = torch.where(share > 0, weight / share.clamp_min(1e-12), 0.0)
        if self.nodes is not None:
            kept = prune_dangling(self.nodes, (value > 0).cpu().numpy())
            keep = torch.from_numpy(np.ascontiguousarray(kept)).to(value.device, value.dtype)
            value, weight = value * keep, weight * keep
        p = torch.sigmoid(self.theta)
        # value as drawn; gradient weight * dp/dtheta = weight * p (1 - p)
        return value + weight * (p - p.detach())


@register_method("ugs")
class UniformGradientSampling(Method):
    Config = UgsConfig
    description = (
        "Uniform Gradient Sampling (Li & Janson 2024; MIB's mask-learning baseline): Bernoulli "
        "edge masks, gradients sampled at uniform mask values, KL + lam * expected density"
    )

    def gates(self, problem: Problem) -> UniformGates:
        c = self.config
        nodes = NodeIndex.of(problem.model.graph.edge_names) if c.prune_dangling else None
        return UniformGates(
            problem.n_edges,
            c.init,
            problem.model.device,
            samples=c.samples,
            window=c.window,
            normalize=c.normalize,
            nodes=nodes,
        )

    def scores(self, problem: Problem) -> Tensor:
        c = self.config
        gates = self.gates(problem)
        loss = faithfulness(problem, "kl")

        def backward(step: int, f: Tensor, term: Tensor) -> None:
            (f + term).backward()
            if c.clip is not None:
                torch.nn.utils.clip_grad_norm_(gates.parameters(), c.clip)

        trace = descend(
            gates,
            lambda masks: loss(masks).mean(),
            LinearWarmup.over(c.lam, c.warmup, c.steps),  # at warmup 0: lam from step 1
            steps=c.steps,
            lr=c.lr,
            backward=backward,
        )
        self.trace = {**trace.summary(), "samples": c.samples, "in_window": gates.in_window}
        return gates.scores()
