"""How ``ipd`` turns a finished descent into a ranking (``IpdConfig.rank``).

- ``coefficient`` (``ipd-classic``): the learned coefficients. Issue 13 traced why this ranks
  small circuits badly: the run ends with a block of coefficients saturated at ~1 (11 of 81 on
  ``induction``) whose order is arbitrary.
- ``attribution``: ``|d metric / d m|`` at the learned masks (attribution patching, Nanda 2023 /
  Syed et al. 2023, taken at the learned point instead of the clean model): what each edge still
  carries there.
- ``pruning``: the point where each edge leaves the circuit along the descent's own path
  (``lambda`` grows over the warm-up, so edges drop out one after another): an edge's score is
  1 + the last step at which its coefficient was at least ``threshold`` (0 if never), so edges
  that stay longest rank first and the edges still in the circuit at the end rank above all;
  the final circuit is ordered by attribution at the learned masks, edges that left at the
  same step by their learned coefficient then attribution, scaled into [0, 0.99) so a
  tie-break never overrides a step (see :func:`exit_scores`). The same idea as
  ACDC's and subnetwork probing's ROC read off a path of circuits (Conmy et al. 2023), from one
  run.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from tasks.problem import Problem

RANKS = ("pruning", "attribution", "coefficient")


class ExitTracker:
    """``after_step`` hook of :func:`methods.descent.descend`: the last step at which each
    coefficient (``coefficients()``, over the gates) was at least ``threshold``."""

    def __init__(self, coefficients: Callable[[], Tensor], n: int, threshold: float) -> None:
        self.coefficients, self.threshold = coefficients, threshold
        self.last_in = torch.full((n,), -1, dtype=torch.long)

    def __call__(self, step: int, before: list[Tensor], after: list[Tensor]) -> None:
        inside = (self.coefficients().detach().cpu() >= self.threshold).nonzero().flatten()
        self.last_in[inside] = step


def attribution(problem: Problem, masks: Tensor) -> Tensor:
    """``|d metric / d m|`` per edge at ``masks`` (one forward and one backward pass)."""
    m = masks.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(problem.metric_of(m), m)
    return grad.abs().detach().cpu()


def exit_scores(last_in: Tensor, attr: Tensor, coef: Tensor | None = None) -> Tensor:
    """``1 + last step in the circuit`` (0 if never in it) plus a tie-break in [0, 0.99).

    Edges still in the circuit at the end are ordered by attribution (their coefficients are
    saturated, their order arbitrary). Edges that left at the same step are ordered by their
    learned coefficient ``coef`` first (how far they were from leaving; on a saturated model,
    e.g. tracr, their attribution is exactly 0, and attribution alone left ties that decided
    AUC on tracr-hist and tracr-sort-unique), attribution second. ``coef`` None: attribution
    only (the first version of this rank)."""
    scale = attr.max().clamp_min(1e-30)
    by_attr = attr.float() / scale
    if coef is None:
        tie = by_attr
    else:
        final = last_in == last_in.max()
        left = 0.9 * coef.detach().float().cpu().clamp(0, 1) + 0.09 * by_attr
        tie = torch.where(final, by_attr, left)
    return (last_in + 1).float() + 0.99 * tie
