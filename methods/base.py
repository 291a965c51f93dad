"""The method interface and registry (``@register_method``).

A method receives a :class:`tasks.problem.Problem` (the patchable model, the task's data, the
ablation, the task's metric and divergence) and returns one score per edge, higher = more
important. It never sees the ground truth. Each method has a frozen ``Config`` dataclass; a
named variant is a subclass registered under its own key with different config defaults.

After a call, ``method.trace`` is a dict that the runner writes to the run folder. Standard keys
(all optional): ``steps`` (int), ``stopped_early`` (bool) and ``final_loss`` (float, the final
faithfulness loss normalised so the fully ablated model is ~1); any method-specific keys may be
added (numbers, strings, and lists or dicts of them). ``Method.__call__`` resets it to ``{}``
before ``scores``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from jaxtyping import Float
from torch import Tensor

from core.registry import Registry
from methods.config import check_types
from patching.graph import GraphOptions
from tasks.problem import Problem

__all__ = ["METHODS", "Method", "MethodConfig", "get_method", "register_method"]


@dataclass(frozen=True)
class MethodConfig:
    """Fields every method has. Subclasses validate their own fields in ``__post_init__``
    (calling :func:`methods.config.check_types` first); this one checks the seed's type."""

    seed: int = 0

    def __post_init__(self) -> None:
        check_types(self)


class Method(ABC):
    """Base class of every discovery method; subclasses set ``Config`` and implement ``scores``."""

    key: ClassVar[str]
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    signed: ClassVar[bool] = False  # True when the sign of the scores is meaningful for ranking
    # True when each distinct score is one threshold run's circuit (ACDC): eval's auc_pareto
    threshold_swept: ClassVar[bool] = False
    # edge recovery (AUC, AP, precision@k) by the signed scores; None: as ``signed``. False on a
    # signed method whose negative scores mark circuit members (ipd-neg): recovery by |score|
    signed_recovery: ClassVar[bool | None] = None
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
        self.trace: dict[str, Any] = {}

    def __call__(self, problem: Problem) -> Float[Tensor, " n_edges"]:
        """Scores of every edge; the one place the signal check runs (when ``needs_signal``)."""
        if self.needs_signal:
            problem.check_signal()
        torch.manual_seed(self.config.seed)
        self.trace = {}
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
