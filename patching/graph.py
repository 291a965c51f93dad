"""The edge graph of a sequential-block transformer (README, "The graph and the one-pass
patched forward").

Sources write to the residual stream: ``embed``, one node per head ``a{l}.h{h}``, one per
MLP ``m{l}``. Destinations read from it: each head's query/key/value input
``a{l}.h{h}.q|k|v`` (or ``a{l}.h{h}`` when q/k/v are not split), each MLP input ``m{l}``,
and ``logits``. An edge ``src->dst`` exists when ``src`` is upstream of ``dst``. The names and
their semantics are owned by :mod:`patching.names` (parser, formatter, projection onto a graph
option); this module enumerates them for one model.

Edge order is chosen so that every destination block of a layer is one contiguous slice of the
flat mask vector that reshapes, without a copy, into ``[n_dest_rows, n_upstream(, n_pos)]``:
for layer ``l`` the attention block (rows ordered q-heads, k-heads, v-heads), then the MLP row,
and the ``logits`` row last. Per-position graphs append the position as the fastest index and
name edges ``src->dst@p``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import cached_property

import torch

from patching.names import QKV, edge_name, head_name, is_mlp, mlp_name, project_edges

__all__ = ["QKV", "Block", "EdgeGraph", "GraphConfig", "GraphOptions"]


@dataclass(frozen=True)
class GraphConfig:
    """Which graph to build over a model.

    split_qkv: separate query/key/value destinations per head (else one input per head).
    positions: when set, one edge per (src, dst, token position) for sequences of this length.
    include_mlp: False builds the attention-only graph: MLPs are held clean (every edge into and
        out of an MLP keeps its clean, current-pass value) and are not part of the graph.
    """

    split_qkv: bool = True
    positions: int | None = None
    include_mlp: bool = True

    def __post_init__(self) -> None:
        for name in ("split_qkv", "include_mlp"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.positions is not None and (
            isinstance(self.positions, bool)
            or not isinstance(self.positions, int)
            or self.positions < 1
        ):
            raise ValueError(f"positions must be a positive int or None, got {self.positions!r}")


@dataclass(frozen=True)
class GraphOptions:
    """The graph a method works on, before the task's sequence length is known.

    per_position: one edge per token position (the length comes from the task's data).
    Other fields as in :class:`GraphConfig`.
    """

    split_qkv: bool = True
    per_position: bool = False
    include_mlp: bool = True

    def __post_init__(self) -> None:
        for name in ("split_qkv", "per_position", "include_mlp"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")

    def config(self, seq_len: int) -> GraphConfig:
        """The :class:`GraphConfig` for sequences of ``seq_len`` tokens."""
        return GraphConfig(
            split_qkv=self.split_qkv,
            positions=seq_len if self.per_position else None,
            include_mlp=self.include_mlp,
        )


@dataclass(frozen=True)
class Block:
    """One contiguous run of edges sharing an upstream set: ``rows`` destinations x ``n_up``."""

    start: int  # index of the first (src, dst) pair (position-free)
    rows: int
    n_up: int

    @property
    def stop(self) -> int:
        return self.start + self.rows * self.n_up


@dataclass(frozen=True)
class EdgeGraph:
    """All edges of a model with ``n_layers`` blocks of ``n_heads`` heads (and MLPs if present).

    parallel: attention and MLP of a layer read the same residual (GPT-NeoX/Pythia), so the
        heads of layer l are not upstream of ``m{l}``.
    """

    n_layers: int
    n_heads: int
    has_mlp: bool
    config: GraphConfig = field(default_factory=GraphConfig)
    parallel: bool = False

    def __post_init__(self) -> None:
        if self.n_layers < 1 or self.n_heads < 1:
            raise ValueError("a graph needs at least one layer and one head")

    # ----- sources -----------------------------------------------------------------------
    @property
    def srcs_per_layer(self) -> int:
        return self.n_heads + (1 if self.has_mlp else 0)

    def n_up_attn(self, layer: int) -> int:
        """Number of sources upstream of layer ``layer``'s attention inputs."""
        return 1 + layer * self.srcs_per_layer

    def n_up_mlp(self, layer: int) -> int:
        """Sources upstream of ``m{layer}``: the layer's own heads only in sequential blocks."""
        return self.n_up_attn(layer) + (0 if self.parallel else self.n_heads)

    @cached_property
    def sources(self) -> list[str]:
        """Source names in stack order (also the order of the source-output stack)."""
        names = ["embed"]
        for layer in range(self.n_layers):
            names += [head_name(layer, h) for h in range(self.n_heads)]
            if self.has_mlp:
                names.append(mlp_name(layer))
        return names

    @property
    def n_sources(self) -> int:
        return len(self.sources)

    # ----- destinations and blocks (full internal layout) --------------------------------
    @property
    def attn_rows(self) -> int:
        return self.n_heads * (3 if self.config.split_qkv else 1)

    def attn_dest_names(self, layer: int) -> list[str]:
        if not self.config.split_qkv:
            return [head_name(layer, h) for h in range(self.n_heads)]
        return [head_name(layer, h, r) for r in QKV for h in range(self.n_heads)]

    @cached_property
    def blocks(self) -> dict[str, Block]:
        """Blocks keyed ``attn{l}``, ``mlp{l}`` and ``logits`` over the full (internal) layout."""
        out: dict[str, Block] = {}
        start = 0
        for layer in range(self.n_layers):
            b = Block(start, self.attn_rows, self.n_up_attn(layer))
            out[f"attn{layer}"] = b
            start = b.stop
            if self.has_mlp:
                b = Block(start, 1, self.n_up_mlp(layer))
                out[f"mlp{layer}"] = b
                start = b.stop
        out["logits"] = Block(start, 1, self.n_sources)
        return out

    @cached_property
    def _full_edges(self) -> tuple[list[str], list[str]]:
        srcs, dsts = [], []
        for key, block in self.blocks.items():
            if key.startswith("attn"):
                names = self.attn_dest_names(int(key[4:]))
            elif key.startswith("mlp"):
                names = [mlp_name(int(key[3:]))]
            else:
                names = ["logits"]
            for d in names:
                srcs += self.sources[: block.n_up]
                dsts += [d] * block.n_up
        return srcs, dsts

    @property
    def n_full_pairs(self) -> int:
        return self.blocks["logits"].stop

    @cached_property
    def kept_pair_index(self) -> torch.Tensor | None:
        """Indices into the full layout of the edges in this graph (None: all of them)."""
        if self.config.include_mlp or not self.has_mlp:
            return None
        srcs, dsts = self._full_edges
        keep = [
            i
            for i, (s, d) in enumerate(zip(srcs, dsts, strict=True))
            if not is_mlp(s) and not is_mlp(d)
        ]
        return torch.tensor(keep, dtype=torch.long)

    # ----- public edge list ------------------------------------------------------------------
    @cached_property
    def edge_pairs(self) -> list[tuple[str, str]]:
        """(src, dst) pairs of the position-free graph, in mask order."""
        srcs, dsts = self._full_edges
        pairs = list(zip(srcs, dsts, strict=True))
        if self.kept_pair_index is None:
            return pairs
        return [pairs[i] for i in self.kept_pair_index.tolist()]

    @property
    def n_pos(self) -> int:
        return self.config.positions or 1

    @property
    def n_edges(self) -> int:
        return len(self.edge_pairs) * self.n_pos

    @cached_property
    def edge_names(self) -> list[str]:
        if self.config.positions is None:
            return [edge_name(s, d) for s, d in self.edge_pairs]
        return [edge_name(s, d, p) for s, d in self.edge_pairs for p in range(self.n_pos)]

    @cached_property
    def _index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.edge_names)}

    def edge_index(self, name: str) -> int:
        """Index of an edge given its name, e.g. ``embed->a3.h0.v`` (``...@p`` per position)."""
        try:
            return self._index[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.edge_names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"no edge {name!r} in this graph{hint}") from None

    def edge_mask(self, names: set[str] | list[str]) -> torch.Tensor:
        """Binary mask [n_edges] with 1 on the named edges."""
        mask = torch.zeros(self.n_edges)
        for n in names:
            mask[self.edge_index(n)] = 1.0
        return mask

    def project(self, edges: set[str] | list[str], positions: list[int] | None = None) -> set[str]:
        """``edges`` (named in any graph option) as edges of this graph:
        :func:`patching.names.project_edges` onto this config, then each checked to exist here
        (KeyError naming the closest edges otherwise)."""
        out = project_edges(edges, self.config, positions)
        for name in out:
            self.edge_index(name)
        return out

    def expected_n_edges(self) -> int:
        """Closed-form edge count (tested against the enumeration)."""
        L, H, M = self.n_layers, self.n_heads, int(self.has_mlp)
        if not self.config.include_mlp:
            M_graph = 0
        else:
            M_graph = M
        rows = 3 * H if self.config.split_qkv else H
        per = H + M_graph
        attn = sum(rows * (1 + per * layer) for layer in range(L))
        own = 0 if self.parallel else H
        mlp = sum(1 + per * layer + own for layer in range(L)) if M_graph else 0
        return (attn + mlp + 1 + per * L) * self.n_pos
