"""``random``: seeded random scores, the floor every method must beat."""

from __future__ import annotations

import torch

from methods.base import Method, register_method
from tasks.problem import Problem


@register_method("random")
class RandomScores(Method):
    description = "seeded uniform random edge scores (the floor)"
    needs_signal = False

    def scores(self, problem: Problem) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.config.seed)
        return torch.rand(problem.n_edges, generator=gen)
