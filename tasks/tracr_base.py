"""What the tracr tasks share: :class:`TracrTask` (data over every input of one length, the
shipped compiled model) and their ground truth, a table of :class:`GTEdge` in the q/k/v-split
per-position graph, projected onto any graph option by :func:`patching.names.project_edges`.

:func:`read_write_edges` gives the edges along which the compiled weights connect, from which
each task's table is derived. Programs and weights: :mod:`tasks.tracr_programs`; compiling and
converting: :mod:`models.tracr`; the model itself: ``models.resolve("tracr/<program>")``.
"""

from __future__ import annotations

import itertools
from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from jaxtyping import Float, Int
from torch import Tensor

from models import resolve
from models.tracr import BOS
from patching.graph import EdgeGraph, GraphConfig
from patching.names import QKV, edge_name, head_name, is_upstream, mlp_name, project_edges
from tasks.base import HELDOUT_SEED, Task, TaskData
from tasks.problem import UnsupportedGraphError
from tasks.splits import pool_split
from tasks.tracr_programs import PROGRAMS, load_meta


# ----- read/write structure of the compiled weights ---------------------------------------------
def _support(v: torch.Tensor, labels: list[str]) -> frozenset[str]:
    return frozenset(labels[i] for i in torch.nonzero(v != 0).flatten().tolist())


def read_write_edges(model, labels: list[str]) -> dict[str, frozenset[str]]:
    """Position-free edges ``src->dst`` (q/k/v split) along which the compiled weights connect:
    ``src`` writes a residual direction (nonzero output weight) that ``dst`` reads (nonzero input
    weight). Maps each such edge to the directions it carries."""
    writes = {"embed": _support(model.W_E.abs().sum(0) + model.W_pos.abs().sum(0), labels)}
    reads = {}
    for layer, block in enumerate(model.blocks):
        a = block.attn
        for h in range(model.cfg.n_heads):
            writes[head_name(layer, h)] = _support(a.W_O[h].abs().sum(0), labels)
            for role, W in zip(QKV, (a.W_Q, a.W_K, a.W_V), strict=True):
                reads[head_name(layer, h, role)] = _support(W[h].abs().sum(1), labels)
        writes[mlp_name(layer)] = _support(block.mlp.W_out.abs().sum(0), labels)
        reads[mlp_name(layer)] = _support(block.mlp.W_in.abs().sum(1), labels)
    reads["logits"] = _support(model.W_U.abs().sum(1), labels)
    edges = {}
    for dst, read in reads.items():
        for src, written in writes.items():
            if is_upstream(src, dst) and written & read:
                edges[edge_name(src, dst)] = written & read
    return edges


# ----- ground truth tables ----------------------------------------------------------------------
@dataclass(frozen=True)
class GTEdge:
    """One ground-truth edge of a tracr task, in the q/k/v-split graph.

    positions: ``answers`` (every position but BOS) or ``bos``.
    resample: whether the edge is also needed under resample ablation, i.e. what it carries
        differs between inputs of the task's length and the destination's output depends on it.
    carries: what flows along the edge (documentation).
    """

    src: str
    dst: str
    positions: str
    resample: bool
    carries: str


def _positions(kind: str, n_pos: int) -> range | tuple[int, ...]:
    table = {"answers": range(1, n_pos), "bos": (0,)}
    return table[kind]


def expand_ground_truth(edges: tuple[GTEdge, ...], graph, ablation: str, n_pos: int) -> set[str]:
    """Edge names of ``edges`` (those needed under ``ablation``) in ``graph``: each edge at its
    positions, projected onto the graph's option (:func:`patching.names.project_edges`)."""
    return _expand(edges, graph.config, ablation, n_pos)


def _expand(edges: tuple[GTEdge, ...], config: GraphConfig, ablation: str, n_pos: int) -> set[str]:
    named = {
        edge_name(e.src, e.dst, p)
        for e in edges
        if ablation != "resample" or e.resample
        for p in _positions(e.positions, n_pos)
    }
    return project_edges(named, config)


# ----- the shared task ---------------------------------------------------------------------------
class TracrTask(Task):
    """A task over a compiled tracr program: every input of ``seq_len`` tokens, with BOS first.

    A third of the inputs is held out for evaluation (:func:`tasks.splits.pool_split`); train
    data is drawn from the rest, so ``--n`` is at most ``max_train()`` (two thirds of the pool).
    Subclasses set ``program``, ``seq_len``, ``max_examples`` (the number of distinct inputs),
    ``GROUND_TRUTH`` and implement :meth:`_targets` and the metric.
    """

    program: ClassVar[str]
    seq_len: ClassVar[int] = 4
    GROUND_TRUTH: ClassVar[tuple[GTEdge, ...]] = ()
    ablations: ClassVar[tuple[str, ...]] = ("zero", "resample")
    default_ablation: ClassVar[str] = "zero"  # as in the ACDC paper's tracr experiments
    # Compiled weights saturate softmaxes: float32 underflows where float64 keeps 1.6e-5 of the
    # largest score (eap on tracr-reverse/zero), and its small scores are off by up to 2.5e-6 of
    # it; 2**-14 is the finest power of two at which float32 and float64 rank alike on every
    # shipped tracr task (scripts/tie_tolerance.py).
    tie_rtol: ClassVar[float | None] = 2.0**-14
    per_position: ClassVar[bool] = True

    def __init__(self) -> None:
        self._models: dict[str, object] = {}
        self._meta: dict | None = None

    @property
    def n_pos(self) -> int:
        return self.seq_len + 1

    @property
    def meta(self) -> dict:
        if self._meta is None:
            self._meta = load_meta(self.program)
        return self._meta

    @property
    def source(self):
        """The compiled program's model source, ``tracr/<program>``."""
        return resolve(f"tracr/{self.program}")

    def unavailable_reason(self) -> str | None:
        return self.source.unavailable_reason()

    def load_model(self, device: str = "cpu"):
        key = str(device)
        if key not in self._models:
            self._models[key] = self.source.load(device)
        return self._models[key]

    def inputs(self) -> list[tuple]:
        """Every input sequence (without BOS), in a fixed order."""
        return list(itertools.product(PROGRAMS[self.program].vocab, repeat=self.seq_len))

    def tokens(self, seqs: list[tuple]) -> Int[Tensor, "n pos"]:
        enc = self.meta["input_encoding"]
        return torch.tensor([[enc[BOS]] + [enc[str(t)] for t in s] for s in seqs], dtype=torch.long)

    # ----- splits: a third of the inputs is held out, disjoint from the train pool ------------
    def _split(self) -> tuple[Tensor, Tensor]:
        return pool_split(len(self.inputs()))

    def max_train(self) -> int:
        return len(self._split()[0])

    def n_heldout(self) -> int:
        return len(self._split()[1])

    def _pool_data(self, pool: Tensor, seed: int) -> TaskData:
        """Every input of ``pool`` (indices into :meth:`inputs`), in order; each one's corrupted
        partner drawn uniformly from the *other* inputs of the same pool (so a split's data
        never shows the other split's inputs)."""
        gen = torch.Generator().manual_seed(seed)
        n = len(pool)
        other = torch.randint(n - 1, (n,), generator=gen)
        other = other + (other >= torch.arange(n)).long()
        return self._data_of(pool, pool[other])

    def _make_data(self, n: int, seed: int) -> TaskData:
        """``n`` train inputs for ``seed``: a seeded sample of the train pool."""
        train = self._pool_data(self._split()[0], HELDOUT_SEED)
        order = torch.randperm(train.n, generator=torch.Generator().manual_seed(seed))[:n]
        return train.select(order)

    def make_heldout(self) -> TaskData:
        return self._pool_data(self._split()[1], HELDOUT_SEED)

    def all_data(self, seed: int = 0) -> TaskData:
        """Every input once, in a seeded order, each with a partner drawn from all the others:
        the whole pool, to check the program and its ground truth (a benchmark run uses the
        splits). Seed 0 gives the data the method tests' golden values were measured on."""
        seqs = self.inputs()
        n = len(seqs)
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=gen)
        other = torch.randint(n - 1, (n,), generator=gen)
        other = other + (other >= order).long()  # never the input itself
        return self._data_of(order, other)

    def _data_of(self, clean_idx: Tensor, corrupted_idx: Tensor) -> TaskData:
        seqs = self.inputs()
        clean = self.tokens([seqs[i] for i in clean_idx.tolist()])
        corrupted = self.tokens([seqs[i] for i in corrupted_idx.tolist()])
        answer_mask = torch.ones_like(clean, dtype=torch.bool)
        answer_mask[:, 0] = False
        answers, extra = self._targets([seqs[i] for i in clean_idx.tolist()])
        return TaskData(clean, corrupted, answer_mask, answers, extra=extra)

    @abstractmethod
    def _targets(self, seqs: list[tuple]) -> tuple[Int[Tensor, "n pos"], dict[str, Tensor]]:
        """The program's output on ``seqs``: answer ids (0 at BOS) and any extra tensors."""

    def check_graph(self, config: GraphConfig) -> None:
        super().check_graph(config)  # no per-position ground truth: positions must be None
        if config.positions not in (None, self.n_pos):
            raise ValueError(
                f"task {self.key!r} has per-position ground truth for positions={self.n_pos} "
                f"(BOS + {self.seq_len} tokens) or positions=None, not {config.positions}"
            )
        for ablation in self.ablations:
            # e.g. every needed edge enters or leaves an MLP, on an attention-only graph
            if not _expand(self.GROUND_TRUTH, config, ablation, self.n_pos):
                raise UnsupportedGraphError(
                    f"task {self.key!r} is not supported on this graph option "
                    f"(include_mlp={config.include_mlp}): no edge of its {ablation}-ablation "
                    "ground truth is in it, so none carries the behaviour; use a graph with MLPs"
                )

    def _ground_truth(self, graph: EdgeGraph, ablation: str) -> set[str]:
        c = self.meta["config"]
        if (graph.n_layers, graph.n_heads, graph.has_mlp) != (c["n_layers"], c["n_heads"], True):
            raise ValueError(
                f"task {self.key!r} has ground truth for its compiled model ({c['n_layers']} "
                f"layers, {c['n_heads']} head, MLPs), not a graph of {graph.n_layers} layers, "
                f"{graph.n_heads} heads, has_mlp={graph.has_mlp}"
            )
        return expand_ground_truth(self.GROUND_TRUTH, graph, ablation, self.n_pos)


def answer_mean(values: Float[Tensor, "*k n pos"], data: TaskData) -> Float[Tensor, "*k n"]:
    """Mean of ``values`` over each example's answer positions."""
    mask = data.answer_mask.to(values.dtype)
    return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def correct_log_prob(
    logits: Float[Tensor, "*k n pos vocab"], data: TaskData
) -> Float[Tensor, "*k n"]:
    """Mean log-probability of the right output token over each example's answer positions
    (the metric of the categorical tracr tasks)."""
    logp = torch.log_softmax(logits, dim=-1)
    idx = data.answers.expand(logp.shape[:-1]).unsqueeze(-1)
    return answer_mean(logp.gather(-1, idx).squeeze(-1), data)


def numeric_neg_mse(logits: Float[Tensor, "*k n pos 1"], data: TaskData) -> Float[Tensor, "*k n"]:
    """Negative mean squared error of a numeric output against ``data.extra["target"]``."""
    return -answer_mean((logits[..., 0] - data.extra["target"]) ** 2, data)


def numeric_divergence(
    logits: Float[Tensor, "*k n pos 1"], clean_logits: Float[Tensor, "n pos 1"], data: TaskData
) -> Float[Tensor, "*k n"]:
    """Mean squared difference from the clean numeric output at the answer positions (the ACDC
    paper used an L2 distance for its numeric tracr task, where KL has no meaning)."""
    return answer_mean((logits[..., 0] - clean_logits[..., 0]) ** 2, data)
