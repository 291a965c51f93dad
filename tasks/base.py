"""The task interface and registry (``@register_task``).

A task supplies a model, clean and corrupted batches, a metric, a divergence from the clean
output, its default ablation and the ground-truth edge set. Only the evaluator reads the ground
truth; methods see a :class:`tasks.problem.Problem`, which has no access to it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import ClassVar

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from core.registry import Registry
from patching.graph import EdgeGraph, GraphConfig

# The seed of every generated task's held-out split: fixed, so all runs and seeds of a task are
# scored on the same held-out examples, and none of them is a training seed (0, 1, 2, ...).
HELDOUT_SEED = 1_000_003

# TaskData fields that are not one row per example (kept whole by TaskData.select)
NOT_PER_EXAMPLE = frozenset({"reference"})


@dataclass(frozen=True)
class TaskData:
    """A batch of task examples. All tensors share the first dimension ``n``.

    clean / corrupted: token ids; ``corrupted`` is the paired resample source (same shape).
    answer_mask: the positions whose outputs the metric and the divergence read.
    answers: the correct token at each answer position (0 elsewhere).
    wrong: a contrast token where the metric is a difference (e.g. IOI's subject), else None.
    reference: tokens to average over for mean ablation (None: use ``corrupted``).
    attention_mask: True at real tokens, False at padding (None: no padding). Clean and
        corrupted share it (paired examples have the same token length); the patched forward
        and the ablations honour it (``PatchableModel.forward``). Answer positions must be real.
    """

    clean: Int[Tensor, "n pos"]
    corrupted: Int[Tensor, "n pos"]
    answer_mask: Bool[Tensor, "n pos"]
    answers: Int[Tensor, "n pos"]
    wrong: Int[Tensor, "n pos"] | None = None
    reference: Int[Tensor, "r pos"] | None = None
    extra: dict[str, Tensor] = field(default_factory=dict)
    attention_mask: Bool[Tensor, "n pos"] | None = None

    def __post_init__(self) -> None:
        if self.clean.shape != self.corrupted.shape:
            raise ValueError(
                f"clean and corrupted tokens must have the same shape, got "
                f"{tuple(self.clean.shape)} and {tuple(self.corrupted.shape)}"
            )
        for name in ("answer_mask", "answers", "wrong", "attention_mask"):
            t = getattr(self, name)
            if t is not None and t.shape != self.clean.shape:
                raise ValueError(f"{name} must have shape {tuple(self.clean.shape)}")
        if self.attention_mask is not None and (self.answer_mask & ~self.attention_mask).any():
            raise ValueError("an answer position lies on padding (attention_mask False there)")

    @property
    def n(self) -> int:
        return self.clean.shape[0]

    def select(self, index: Int[Tensor, " m"] | slice) -> TaskData:
        """The examples ``index`` picks: every per-example tensor field (first dimension ``n``,
        including any added later, and every tensor of ``extra``) is indexed; the fields of
        :data:`NOT_PER_EXAMPLE` (``reference``: the mean-ablation population) are kept whole."""
        picked = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in NOT_PER_EXAMPLE or v is None:
                picked[f.name] = v
            elif isinstance(v, Tensor):
                picked[f.name] = self._pick(f.name, v, index)
            elif isinstance(v, dict):
                picked[f.name] = {k: self._pick(f"{f.name}[{k!r}]", t, index) for k, t in v.items()}
            else:
                picked[f.name] = v
        return type(self)(**picked)

    def _pick(self, name: str, t: Tensor, index) -> Tensor:
        if t.ndim == 0 or t.shape[0] != self.n:
            raise ValueError(
                f"TaskData field {name} has shape {tuple(t.shape)}, not one row per example "
                f"(n={self.n}); add it to NOT_PER_EXAMPLE if it is shared by all examples"
            )
        return t[index]

    def to(self, device: torch.device | str) -> TaskData:
        moved = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor):
                v = v.to(device)
            elif isinstance(v, dict):
                v = {k: t.to(device) for k, t in v.items()}
            moved[f.name] = v
        return TaskData(**moved)


def kl_from_clean(
    logits: Float[Tensor, "*k n pos vocab"],
    clean_logits: Float[Tensor, "n pos vocab"],
    data: TaskData,
) -> Float[Tensor, "*k n"]:
    """KL(clean || patched) of the next-token distributions, averaged over answer positions."""
    logp = torch.log_softmax(logits, dim=-1)
    clean_logp = torch.log_softmax(clean_logits, dim=-1)
    kl = (clean_logp.exp() * (clean_logp - logp)).sum(-1)  # [*k, n, pos]
    mask = data.answer_mask.to(kl.dtype)
    return (kl * mask).sum(-1) / mask.sum(-1).clamp(min=1)


class Task(ABC):
    """Base class of every task. Subclasses are registered with ``@register_task("key")``."""

    key: ClassVar[str]
    description: ClassVar[str] = ""
    ablations: ClassVar[tuple[str, ...]] = ("resample",)
    default_ablation: ClassVar[str] = "resample"
    max_examples: ClassVar[int] = 10_000
    default_n: ClassVar[int] = 32
    per_position: ClassVar[bool] = False  # whether a per-position ground truth exists
    metric_description: ClassVar[str] = ""  # the metric and its sign convention
    # False: a faithfulness-only task (no ground truth); the runner leaves edge recovery
    # empty and records ``no_truth_note`` (why) instead of calling ``ground_truth``
    has_ground_truth: ClassVar[bool] = True
    # The tie tolerance of scores found on this task's model, relative to max(|score|, metric
    # gap) (eval.scoring.metrics.Ties); None: the compute dtype's default. A model whose float32
    # scores are known to be coarser (compiled tracr: saturated softmaxes) declares its own.
    tie_rtol: ClassVar[float | None] = None
    no_truth_note: ClassVar[str | None] = None
    heldout_n: ClassVar[int | None] = None  # held-out examples; None: default_n (see n_heldout)

    def unavailable_reason(self) -> str | None:
        """Why this task can't run here (missing weights, optional dependency), or None."""
        return None

    @abstractmethod
    def load_model(self, device: str = "cpu"):
        """The task's model (a ``patching.hooked.HookedModel``, or a ``transformers`` or
        TransformerLens model ``PatchableModel`` reads), in eval mode on ``device``."""

    @abstractmethod
    def _make_data(self, n: int, seed: int) -> TaskData:
        """``n`` examples; ``n`` is already validated."""

    # ----- splits: methods fit the train split, the evaluator scores the held-out split -------
    def n_heldout(self) -> int:
        """Size of the held-out split: ``heldout_n``, else ``default_n`` (a finite-pool task
        holds out a third of its inputs instead, :class:`tasks.tracr_base.TracrTask`)."""
        return self.heldout_n if self.heldout_n is not None else self.default_n

    def max_train(self) -> int:
        """The most train examples :meth:`make_data` gives (``max_examples`` for a generated
        task; the inputs not held out for a finite-pool task)."""
        return self.max_examples

    def n_default(self) -> int:
        """Train examples of a run without ``--n``: ``default_n``, at most :meth:`max_train`."""
        return min(self.default_n, self.max_train())

    def make_data(self, n: int, seed: int = 0) -> TaskData:
        """``n`` train examples for ``seed`` (what a discovery method sees)."""
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if n > self.max_train():
            held = self.max_examples - self.max_train()
            note = f" ({held} of its inputs are held out for evaluation)" if held else ""
            raise ValueError(
                f"task {self.key!r} can generate at most {self.max_train()} train examples"
                f"{note}, got n={n}"
            )
        return self._make_data(n, seed)

    def make_heldout(self) -> TaskData:
        """The held-out split the evaluator scores circuits on, the same for every run: for a
        generated task, :meth:`n_heldout` examples drawn with the fresh seed ``HELDOUT_SEED``
        (examples may repeat train ones only by chance of the generator)."""
        return self._make_data(self.n_heldout(), HELDOUT_SEED)

    @abstractmethod
    def metric(
        self, logits: Float[Tensor, "*k n pos vocab"], data: TaskData
    ) -> Float[Tensor, "*k n"]:
        """Per-example task metric; higher means more of the clean behaviour."""

    def divergence(
        self,
        logits: Float[Tensor, "*k n pos vocab"],
        clean_logits: Float[Tensor, "n pos vocab"],
        data: TaskData,
    ) -> Float[Tensor, "*k n"]:
        """How far the patched output is from the clean model's (default: KL, answer positions)."""
        return kl_from_clean(logits, clean_logits, data)

    def check_graph(self, config: GraphConfig) -> None:
        """Raise ValueError if the ground truth is not defined for this graph option."""
        if config.positions is not None and not self.per_position:
            raise ValueError(
                f"task {self.key!r} defines no per-position ground truth; use positions=None"
            )

    def ground_truth(self, graph: EdgeGraph, ablation: str | None = None) -> set[str]:
        """Names of the ground-truth edges in ``graph`` under ``ablation`` (default ablation)."""
        ablation = ablation or self.default_ablation
        if ablation not in self.ablations:
            raise ValueError(
                f"task {self.key!r} has ground truth for ablations {self.ablations}, "
                f"not {ablation!r}"
            )
        self.check_graph(graph.config)
        return self._ground_truth(graph, ablation)

    @abstractmethod
    def _ground_truth(self, graph: EdgeGraph, ablation: str) -> set[str]:
        """Ground truth for a validated graph and ablation."""


TASKS: Registry[Task] = Registry("task", Task)
register_task = TASKS.register


def get_task(key: str) -> Task:
    """An instance of the task registered as ``key`` (unknown keys suggest the closest)."""
    import tasks  # noqa: F401  (registers every task module)

    task = TASKS.get(key)()
    if not isinstance(task, Task):
        raise TypeError(f"the factory registered as task {key!r} returned {task!r}, not a Task")
    return task
