"""A run's problem: what a discovery method may see, and the one function that builds it.

:class:`Problem` holds the patchable model, the task's data, the ablated sources and the task's
metric and divergence; it never holds the ground truth. :func:`build_problem` is the single
setup path of a (task, method, seed) run: data, graph, model, ablation. Both the methods and
the evaluator import from here, so neither depends on the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from patching.graph import GraphOptions
from patching.patched import AblatedSources, PatchableModel
from tasks.base import Task, TaskData


class NoSignalError(ValueError):
    """The task's metric does not separate the clean from the ablated model."""


class UnsupportedGraphError(ValueError):
    """The task defines no ground truth on the graph a method asks for (a skip, not a failure)."""


@dataclass
class Problem:
    """What a discovery method may see. Built by :func:`build_problem`; holds no ground truth."""

    model: PatchableModel
    data: TaskData
    ablation: AblatedSources
    metric: Callable[[Tensor, TaskData], Tensor]
    divergence: Callable[[Tensor, Tensor, TaskData], Tensor]
    # the task's tie tolerance (Task.tie_rtol; eval.scoring.metrics.Ties)
    tie_rtol: float | None = None

    def __post_init__(self) -> None:
        # unembed only the positions the metric reads (every metric reads answer positions)
        read = self.data.answer_mask.any(0)
        self._logit_positions = None if read.all() else read.nonzero().flatten()
        # Sources to compute (None: all). A method that fixes every edge out of some sources at
        # 0 may skip computing them (ipd-hier's fine stage); see PatchableModel.forward.
        self.live: Tensor | None = None
        with torch.no_grad():
            ones = torch.ones(self.n_edges, device=self.model.device)
            self.clean_logits = self.run(ones)
            self.ablated_logits = self.run(torch.zeros_like(ones))

    @classmethod
    def from_task(cls, task: Task, model: PatchableModel, data: TaskData, ablation: str) -> Problem:
        """The problem of ``task`` on a model and data already made (ablation: a kind)."""
        abl = model.ablate(
            ablation, data.clean, data.corrupted, data.reference, data.attention_mask
        )
        return cls(model, data, abl, task.metric, task.divergence, task.tie_rtol)

    @property
    def n_edges(self) -> int:
        return self.model.graph.n_edges

    def run(self, masks: Float[Tensor, "*k n_edges"]) -> Tensor:
        """Logits of the patched model on the clean batch (0 at positions no metric reads)."""
        return self.model(
            self.data.clean,
            masks,
            self.ablation,
            logit_positions=self._logit_positions,
            live=self.live,
            attention_mask=self.data.attention_mask,
        )

    def metric_of(self, masks: Float[Tensor, "*k n_edges"]) -> Float[Tensor, "*k"]:
        """Mean task metric over the batch under ``masks``."""
        return self.metric(self.run(masks), self.data).mean(-1)

    def divergence_of(self, masks: Float[Tensor, "*k n_edges"]) -> Float[Tensor, "*k"]:
        """Mean divergence from the clean output over the batch under ``masks``."""
        return self.divergence(self.run(masks), self.clean_logits, self.data).mean(-1)

    # The reference points every method and the evaluator normalise against, read off the
    # logits computed once at construction (no forward pass). Properties, not caches: a test
    # may swap ``metric``.
    @property
    def metric_clean(self) -> float:
        """Mean task metric of the clean model (all masks 1)."""
        return self.metric(self.clean_logits, self.data).mean().item()

    @property
    def metric_ablated(self) -> float:
        """Mean task metric of the fully ablated model (all masks 0)."""
        return self.metric(self.ablated_logits, self.data).mean().item()

    @property
    def divergence_clean(self) -> float:
        """Mean divergence of the clean model from itself (0 for KL; the ACDC start value)."""
        return self.divergence(self.clean_logits, self.clean_logits, self.data).mean().item()

    @property
    def divergence_ablated(self) -> float:
        """Mean divergence of the fully ablated model from the clean one."""
        return self.divergence(self.ablated_logits, self.clean_logits, self.data).mean().item()

    def signal_problem(self) -> str | None:
        """Why the metric gives no signal (NaN, or equal on clean and ablated model), or None."""
        clean, ablated = self.metric_clean, self.metric_ablated
        if not math.isfinite(clean) or not math.isfinite(ablated):
            return (
                f"the task metric is not finite (clean {clean}, ablated {ablated}); "
                "the task gives no signal to optimise"
            )
        if abs(clean - ablated) <= 1e-6 * max(abs(clean), abs(ablated), 1e-12):
            return (
                f"the task metric is the same on the clean and the ablated model ({clean:.6g}); "
                "the task gives no signal: check the corrupted data and the ablation"
            )
        return None

    @property
    def has_signal(self) -> bool:
        """Whether the metric separates the clean from the ablated model (faithfulness defined)."""
        return self.signal_problem() is None

    def check_signal(self) -> None:
        """Raise :class:`NoSignalError` if the task's metric gives no signal."""
        reason = self.signal_problem()
        if reason is not None:
            raise NoSignalError(reason)


def build_problem(
    task: Task,
    graph: GraphOptions,
    n: int,
    seed: int,
    ablation: str,
    device: str | torch.device = "cpu",
) -> Problem:
    """The problem of one run: ``n`` examples of ``task`` for ``seed`` on ``device``, the task's
    model patchable on the graph ``graph`` asks for, and its ``ablation`` (a concrete kind).

    Raises :class:`UnsupportedGraphError` when the task has no ground truth on that graph. The
    signal check is left to the method (``Method.needs_signal``), so it runs once.
    """
    data = task.make_data(n, seed).to(device)
    config = graph.config(data.clean.shape[1])
    try:
        task.check_graph(config)
    except ValueError as exc:
        raise UnsupportedGraphError(str(exc)) from exc
    model = PatchableModel(task.load_model(str(device)), config)
    return Problem.from_task(task, model, data, ablation)
