"""MIB's node and edge names (EAP-IG's ``Graph``) and ours (:mod:`patching.names`), both ways.

MIB (Mueller et al. 2025, circuit-localization track) names graphs as hannamw/EAP-IG's
``src/eap/graph.py`` does: the embedding is ``input`` (ours ``embed``), heads ``a{l}.h{h}``,
MLPs ``m{l}`` and ``logits`` as ours; a head's q/k/v input is the child ``a{l}.h{h}`` with the
edge suffix ``<q>`` (ours: the destination ``a{l}.h{h}.q``). So ``embed->a3.h0.v`` is MIB's
``input->a3.h0<v>``. MIB graphs always split q/k/v and have no positions. The file format that
uses these names is :mod:`eval.formats.mib`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from patching.names import EMBED, LOGITS, QKV, parse_edge

if TYPE_CHECKING:
    from patching.graph import EdgeGraph

MIB_INPUT = "input"  # MIB's name of our ``embed``
MIB_LOGITS = LOGITS  # the same name in both


class MibNameError(ValueError):
    """A name that has no counterpart on the other side (bad MIB name, or an edge of ours MIB
    graphs can't have: per position, or into a head without a q/k/v role)."""


def to_mib_node(name: str) -> str:
    """Our source node name -> MIB's: ``embed`` -> ``input``, any other unchanged."""
    return MIB_INPUT if name == EMBED else name


def from_mib_node(name: str) -> str:
    """MIB's node name -> ours: ``input`` -> ``embed``, any other unchanged."""
    return EMBED if name == MIB_INPUT else name


def to_mib_edge(name: str) -> str:
    """Our edge name -> MIB's: ``embed->a3.h0.v`` -> ``input->a3.h0<v>``."""
    e = parse_edge(name)
    if e.position is not None:
        raise MibNameError(f"MIB graphs have no positions; cannot name {name!r}")
    dst = e.dst
    if dst.kind == "head":
        if dst.role is None:
            raise MibNameError(f"MIB graphs split q/k/v inputs; {name!r} has no role")
        child = f"{to_mib_node(dst.name.rsplit('.', 1)[0])}<{dst.role}>"
    else:
        child = dst.name
    return f"{to_mib_node(e.src.name)}->{child}"


def from_mib_edge(name: str) -> str:
    """MIB's edge name -> ours: ``input->a3.h0<v>`` -> ``embed->a3.h0.v``."""
    src, sep, child = name.partition("->")
    if not sep:
        raise MibNameError(f"bad MIB edge name {name!r}; expected 'parent->child[<q|k|v>]'")
    src = from_mib_node(src)
    if child.endswith(">") and "<" in child:
        child, role = child[:-1].split("<", 1)
        if role not in QKV:
            raise MibNameError(f"bad MIB edge name {name!r}: role {role!r} not in q, k, v")
        child = f"{child}.{role}"
    ours = f"{src}->{child}"
    try:
        parse_edge(ours)
    except ValueError as err:
        raise MibNameError(f"bad MIB edge name {name!r}: {err}") from None
    return ours


def mib_nodes(graph: EdgeGraph) -> list[str]:
    """MIB's node names of ``graph`` in EAP-IG's order: input, per layer heads then MLP, logits."""
    return [to_mib_node(s) for s in graph.sources] + [MIB_LOGITS]


def names_mlp(names: Iterable[str]) -> bool:
    """Whether any of the MIB node or edge names mentions an MLP (``m3``)."""
    for name in names:
        for part in str(name).replace("<", "->").split("->"):
            if len(part) > 1 and part[0] == "m" and part[1:].isdigit():
                return True
    return False
