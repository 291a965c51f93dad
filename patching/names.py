"""Node and edge names: the one parser, formatter and projection.

Nodes. Sources write to the residual stream, destinations read from it:

    embed          source: token + position embedding
    a{l}.h{h}      source: head h of layer l's output; also that head's one input when q/k/v
                   are not split
    a{l}.h{h}.q    destination: the head's query input (``.k`` key, ``.v`` value)
    m{l}           the MLP of layer l: a source (its output) and a destination (its input)
    logits         destination: the final residual stream, read by the unembedding

Edges. ``src->dst`` is the contribution of source ``src``'s output to what destination ``dst``
reads; a per-position graph has one edge per token position, ``src->dst@p``, where ``p`` is
the position at which ``dst`` reads that input (the query position for ``q``, the key position
for ``k``/``v``, the position read for an MLP or the logits). An edge exists when ``src`` is
upstream of ``dst``: it writes before ``dst`` reads (:func:`depth` < :func:`read_depth`).

Graph options (:class:`patching.graph.GraphConfig`) change which names a graph has, and
:func:`project_edges` maps an edge set between them: merged q/k/v (a head's input is the union
of its roles), attention-only (edges into or out of an MLP are not in the graph), per position
(a position-free edge at the given positions) and back (positions dropped).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from patching.graph import GraphConfig

QKV = ("q", "k", "v")
EMBED, LOGITS = "embed", "logits"
NODE_KINDS = ("embed", "head", "mlp", "logits")
NODE_FORM = "embed, logits, a{layer}.h{head}, a{layer}.h{head}.q|k|v or m{layer}"
SOURCE_FORM = "embed, a{layer}.h{head} or m{layer}"
DESTINATION_FORM = "logits, a{layer}.h{head}, a{layer}.h{head}.q|k|v or m{layer}"
EDGE_FORM = "{source}->{destination} or {source}->{destination}@{position}"

_INT = r"(0|[1-9]\d*)"
_NODE_RE = re.compile(rf"a{_INT}\.h{_INT}(?:\.([qkv]))?|m{_INT}")
_EDGE_RE = re.compile(rf"(.+?)->(.+?)(?:@{_INT})?")


@dataclass(frozen=True)
class Node:
    """A parsed node: ``kind`` one of :data:`NODE_KINDS`; ``layer`` for heads and MLPs;
    ``head`` for heads; ``role`` (q, k or v) for a head's input in a q/k/v-split graph."""

    kind: str
    layer: int | None = None
    head: int | None = None
    role: str | None = None

    def __post_init__(self) -> None:
        needs = {"embed": (), "logits": (), "mlp": ("layer",), "head": ("layer", "head")}
        if self.kind not in needs:
            raise ValueError(f"node kind must be one of {NODE_KINDS}, got {self.kind!r}")
        for name in ("layer", "head"):
            value = getattr(self, name)
            wanted = name in needs[self.kind]
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            if (value is not None) != wanted or (wanted and not ok):
                raise ValueError(f"a {self.kind} node needs {needs[self.kind]}, got {self!r}")
        if self.role is not None and (self.kind != "head" or self.role not in QKV):
            raise ValueError(f"only a head's input has a role (one of {QKV}), got {self!r}")

    @property
    def name(self) -> str:
        if self.kind == "head":
            return f"a{self.layer}.h{self.head}" + (f".{self.role}" if self.role else "")
        if self.kind == "mlp":
            return f"m{self.layer}"
        return self.kind

    def __str__(self) -> str:
        return self.name

    @property
    def is_source(self) -> bool:
        return self.kind != "logits" and self.role is None

    @property
    def is_destination(self) -> bool:
        return self.kind != "embed"


@dataclass(frozen=True)
class Edge:
    """A parsed edge ``src->dst`` (``@position`` in a per-position graph)."""

    src: Node
    dst: Node
    position: int | None = None

    def __post_init__(self) -> None:
        if not self.src.is_source:
            raise ValueError(f"{self.src.name!r} is not a source; expected {SOURCE_FORM}")
        if not self.dst.is_destination:
            raise ValueError(f"{self.dst.name!r} is not a destination; expected {DESTINATION_FORM}")
        if self.position is not None and (not isinstance(self.position, int) or self.position < 0):
            raise ValueError(f"an edge's position must be an int >= 0, got {self.position!r}")

    @property
    def name(self) -> str:
        return edge_name(self.src.name, self.dst.name, self.position)

    def __str__(self) -> str:
        return self.name


# ----- parsing and formatting --------------------------------------------------------------------
@lru_cache(maxsize=65536)
def parse_node(name: str) -> Node:
    """The :class:`Node` named ``name``; ValueError naming it and the expected form."""
    if name in (EMBED, LOGITS):
        return Node(name)
    m = _NODE_RE.fullmatch(name) if isinstance(name, str) else None
    if m is None:
        raise ValueError(f"bad node name {name!r}; expected {NODE_FORM}")
    layer, head, role, mlp = m.groups()
    if mlp is not None:
        return Node("mlp", int(mlp))
    return Node("head", int(layer), int(head), role)


@lru_cache(maxsize=65536)
def parse_edge(name: str) -> Edge:
    """The :class:`Edge` named ``name``; ValueError naming it and the expected form."""
    m = _EDGE_RE.fullmatch(name) if isinstance(name, str) else None
    if m is None:
        raise ValueError(f"bad edge name {name!r}; expected {EDGE_FORM}")
    src, dst, pos = m.groups()
    try:
        return Edge(parse_node(src), parse_node(dst), None if pos is None else int(pos))
    except ValueError as err:
        raise ValueError(f"bad edge name {name!r}: {err}") from None


def head_name(layer: int, head: int, role: str | None = None) -> str:
    """``a{layer}.h{head}`` (a source, or a head's merged input), ``...{.q|.k|.v}`` with a role."""
    return Node("head", layer, head, role).name


def mlp_name(layer: int) -> str:
    """``m{layer}``."""
    return Node("mlp", layer).name


def edge_name(src: str, dst: str, position: int | None = None) -> str:
    """``src->dst``, or ``src->dst@position`` (names are not validated here: hot path)."""
    return f"{src}->{dst}" if position is None else f"{src}->{dst}@{position}"


def at_position(name: str, position: int) -> str:
    """The per-position name of position-free edge ``name``: ``src->dst`` -> ``src->dst@p``."""
    e = parse_edge(name)
    if e.position is not None:
        raise ValueError(f"edge {name!r} already has a position")
    return edge_name(e.src.name, e.dst.name, position)


# ----- questions about a node name ------------------------------------------------------------
def is_head(name: str) -> bool:
    """Whether ``name`` is a head (as a source, or any of its inputs)."""
    return parse_node(name).kind == "head"


def is_mlp(name: str) -> bool:
    return parse_node(name).kind == "mlp"


def layer_of(name: str) -> int | None:
    """The layer of a head or MLP node; None for ``embed`` and ``logits``."""
    return parse_node(name).layer


def role_of(name: str) -> str | None:
    """``q``, ``k`` or ``v`` for a head's input in a q/k/v-split graph, else None."""
    return parse_node(name).role


def without_role(name: str) -> str:
    """The node a destination belongs to: ``a1.h0.q`` -> ``a1.h0``; other names unchanged."""
    node = parse_node(name)
    return node.name if node.role is None else head_name(node.layer, node.head)


def with_role(name: str, role: str) -> str:
    """A head's input with ``role``: ``a1.h0``, ``q`` -> ``a1.h0.q``."""
    node = parse_node(name)
    if node.kind != "head":
        raise ValueError(f"only a head's input has a role, not {name!r}")
    return head_name(node.layer, node.head, role)


def depth(name: str) -> float:
    """When a source writes, in layers: ``embed`` first (-1), a head at ``l``, an MLP at
    ``l + 0.5`` (after its layer's heads)."""
    node = parse_node(name)
    if not node.is_source:
        raise ValueError(f"{name!r} is not a source; depth is when a source writes")
    if node.kind == "embed":
        return -1.0
    return node.layer + (0.5 if node.kind == "mlp" else 0.0)


def read_depth(name: str, parallel: bool = False) -> float:
    """When a destination reads: a head's input at ``l``, an MLP's at ``l + 0.5`` (after its
    layer's heads; at ``l`` in a parallel attention + MLP block), ``logits`` last."""
    node = parse_node(name)
    if not node.is_destination:
        raise ValueError(f"{name!r} is not a destination; read_depth is when it reads")
    if node.kind == "logits":
        return math.inf
    return node.layer + (0.5 if node.kind == "mlp" and not parallel else 0.0)


def is_upstream(src: str, dst: str, parallel: bool = False) -> bool:
    """Whether ``src`` writes before ``dst`` reads, i.e. the edge ``src->dst`` exists."""
    return depth(src) < read_depth(dst, parallel)


# ----- projection onto a graph option -----------------------------------------------------------
def project_edges(
    edges: Iterable[str], config: GraphConfig, positions: Iterable[int] | None = None
) -> set[str]:
    """The edge names of ``edges`` in a graph built with ``config``.

    - q/k/v not split: a head's q, k and v inputs merge into one (the union of their edges);
    - attention-only (``include_mlp=False``): edges into or out of an MLP are dropped;
    - per position (``config.positions`` set): an edge with a position keeps it; a
      position-free edge is put at ``positions`` (default: every position);
    - position-free: positions are dropped (an edge at any position is the edge).

    Names are validated (ValueError); whether each edge exists in a given model's graph is the
    graph's question (:meth:`patching.graph.EdgeGraph.edge_index`).
    """
    n_pos = config.positions
    everywhere = tuple(range(n_pos or 0)) if positions is None else tuple(positions)
    bad = [p for p in everywhere if not 0 <= p < (n_pos or 0)]
    if n_pos is not None and bad:
        raise ValueError(f"positions {bad} are outside a graph of {n_pos} positions")
    out: set[str] = set()
    for name in edges:
        e = parse_edge(name)
        if not config.include_mlp and "mlp" in (e.src.kind, e.dst.kind):
            continue
        dst = e.dst.name if config.split_qkv else without_role(e.dst.name)
        if n_pos is None:
            out.add(edge_name(e.src.name, dst))
        elif e.position is None:
            out.update(edge_name(e.src.name, dst, p) for p in everywhere)
        elif e.position < n_pos:
            out.add(edge_name(e.src.name, dst, e.position))
        else:
            raise ValueError(f"edge {name!r} is outside a graph of {n_pos} positions")
    return out
