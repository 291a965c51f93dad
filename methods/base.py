"""The method interface and registry (``@register_method``).

A method receives a :class:`Problem` (the patchable model, the task's data, the ablation, the
task's metric and divergence) and returns one score per edge, higher = more important. It never
sees the ground truth. Each method has a frozen ``Config`` dataclass; a named variant is a
subclass registered under its own key with different config defaults.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from jaxtyping import Float
from torch import Tensor

from core.registry import Registry
from patching.graph import GraphOptions
from patching.patched import AblatedSources, PatchableModel
from tasks.base import TaskData


class NoSignalError(ValueError):
    """The task's metric does not separate the clean from the ablated model."""


@dataclass
class Problem:
    """What a discovery method may see. Built by the evaluator; holds no ground truth."""

    model: PatchableModel
    data: TaskData
    ablation: AblatedSources
    metric: Callable[[Tensor, TaskData], Tensor]
    divergence: Callable[[Tensor, Tensor, TaskData], Tensor]

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
    def from_task(cls, task, model: PatchableModel, data: TaskData, ablation: str) -> Problem:
        abl = model.ablate(ablation, data.clean, data.corrupted, data.reference)
        return cls(model, data, abl, task.metric, task.divergence)

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

    def check_signal(self) -> None:
        """Refuse a task whose metric is NaN or equal on the clean and the ablated model."""
        clean, ablated = self.metric_clean, self.metric_ablated
        if not math.isfinite(clean) or not math.isfinite(ablated):
            raise NoSignalError(
                f"the task metric is not finite (clean {clean}, ablated {ablated}); "
                "the task gives no signal to optimise"
            )
        scale = max(abs(clean), abs(ablated), 1e-12)
        if abs(clean - ablated) <= 1e-6 * scale:
            raise NoSignalError(
                "the task metric is the same on the clean and the ablated model "
                f"({clean:.6g}); "
                "the task gives no signal: check the corrupted data and the ablation"
            )


@dataclass(frozen=True)
class MethodConfig:
    """Fields every method has. Subclasses validate their own fields in ``__post_init__``."""

    seed: int = 0


class Method(ABC):
    """Base class of every discovery method; subclasses set ``Config`` and implement ``scores``."""

    key: ClassVar[str]
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    signed: ClassVar[bool] = False  # True when the sign of the scores is meaningful for ranking
    description: ClassVar[str] = ""
    needs_signal: ClassVar[bool] = True  # refuse tasks whose metric can't tell clean from ablated
    graph: ClassVar[GraphOptions] = GraphOptions()  # the graph the method works on

    def __init__(self, config: MethodConfig | None = None, **overrides) -> None:
        if config is None:
            config = self.Config(**overrides)
        elif overrides:
            raise TypeError("pass either a config or keyword overrides, not both")
        if not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} needs a {self.Config.__name__}")
        self.config = config

    def __call__(self, problem: Problem) -> Float[Tensor, " n_edges"]:
        if self.needs_signal:
            problem.check_signal()
        torch.manual_seed(self.config.seed)
        scores = self.scores(problem)
        if scores.shape != (problem.n_edges,):
            raise RuntimeError(
                f"{self.key} returned scores of shape {tuple(scores.shape)}, "
                f"expected ({problem.n_edges},)"
            )
        return scores.detach().float().cpu()

    @abstractmethod
    def scores(self, problem: Problem) -> Float[Tensor, " n_edges"]:
        """One score per edge, in the graph's edge order."""


METHODS: Registry[Method] = Registry("method", Method)
register_method = METHODS.register


def get_method(key: str, **overrides) -> Method:
    import methods  # noqa: F401  (registers every method module)

    return METHODS.get(key)(**overrides)
