"""Train and held-out splits (MIB discovers circuits on a train split and evaluates them on
held-out examples; Mueller et al. 2025).

A method sees only the train split (:meth:`tasks.base.Task.make_data`, ``--n`` examples for the
run's seed). The evaluator scores faithfulness on the task's held-out split
(:meth:`tasks.base.Task.make_heldout`), fixed per task: a generated task draws it with the seed
:data:`tasks.base.HELDOUT_SEED`; a task with a finite pool of inputs (tracr) holds out a third of
its inputs, disjoint from the train pool (:func:`pool_split`).
"""

from __future__ import annotations

import torch

from tasks.base import HELDOUT_SEED, Task
from tasks.problem import Problem

__all__ = ["HELDOUT_SEED", "HELDOUT_SHARE", "build_heldout", "pool_split"]

HELDOUT_SHARE = 3  # a finite pool holds out floor(pool / 3) of its inputs


def pool_split(n_pool: int, seed: int = HELDOUT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, held-out indices) of a pool of ``n_pool`` inputs: a seeded permutation,
    its first ``n_pool // 3`` held out. Disjoint, together the whole pool, each sorted."""
    if n_pool < HELDOUT_SHARE:
        raise ValueError(f"a pool of {n_pool} inputs is too small to hold out a third")
    perm = torch.randperm(n_pool, generator=torch.Generator().manual_seed(seed))
    n_held = n_pool // HELDOUT_SHARE
    return perm[n_held:].sort().values, perm[:n_held].sort().values


def build_heldout(task: Task, problem: Problem, ablation: str) -> Problem:
    """The held-out problem of a run: the task's held-out split on the same patchable model
    (same graph, so the train run's scores apply), with ``ablation`` computed on it."""
    data = task.make_heldout().to(problem.model.device)
    return Problem.from_task(task, problem.model, data, ablation)
