"""The IOI ground truth: Wang et al.'s 26 heads in 7 classes, connected as in ACDC's evaluation.

Class-to-class edges with the destination's q/k/v role (``input`` = the embedding and every
MLP output; ``output`` = the logits and every MLP input):

    input            -> previous token, duplicate token   q, k, v
    input            -> S-inhibition                      q
    input            -> name mover, backup, negative      k, v
    previous token   -> induction                         k, v
    induction        -> S-inhibition                      k, v
    duplicate token  -> S-inhibition                      k, v
    S-inhibition     -> name mover, backup, negative      q
    name mover, backup, negative -> output

An edge counts only where the graph has it, i.e. its destination is downstream of its source
(a head feeds the MLP of its own layer). MLPs are not pruned in that evaluation, so every edge
between non-head nodes is in too: embed -> each MLP and -> logits, each MLP -> every later MLP
and -> logits.

On GPT-2 small with q/k/v split this gives **615 edges**:

    input -> heads           360  (prev 24, dup 18, S-inhibition q 34, movers k/v 284)
    head -> head             124  (prev->ind 16, ind->S-inh 32, dup->S-inh 24, S-inh->movers 52)
    movers -> output          40  (logits 13, MLPs 27)
    non-head -> non-head      91  (embed->MLP 12, embed->logits 1, MLP->MLP 66, MLP->logits 12)

Without the q/k/v split a head's single input takes the union of its roles: 409 edges
(input -> heads 190, head -> head 88, output 40, non-head 91). Attention-only graph
(``include_mlp=False``, every edge touching an MLP dropped): 183 edges with the split
(embed -> heads 45, head -> head 124, -> logits 13, embed -> logits 1), 124 without.

**Per position.** In a per-position graph ``s->d@p`` is destination ``d``'s input at token
position ``p``: the query position for a ``q`` input, the key position for ``k``/``v``, the
position read for an MLP or the logits. So an edge's positions are fixed by *where its
destination reads that input*, :data:`READS`, at the token roles IO, S1, S1+1, S2 and END
(the last token) of Wang et al. (2022), Section 3:

- previous-token heads copy information about S into S1+1, the token after S1, attending
  from S1+1 to S1: q at S1+1, k/v at S1;
- duplicate-token heads are active at S2 and attend primarily to S1: q at S2, k/v at S1;
- induction heads are active at S2 and attend to S1+1, where the previous-token heads wrote
  (K-composition): q at S2, k/v at S1+1;
- S-inhibition heads "are active at END, attend to the S2 token" and write into the name
  movers' queries: q at END, k/v at S2;
- name movers "are active at END, attend to previous names in the sentence, and copy the
  names they attend to"; their low attention to S1 and S2 is what S-inhibition causes, so the
  keys (and values) at all three name positions take part: q at END, k/v at IO, S1, S2.
  Backup name movers take over that role and negative name movers attend to IO the same way
  (writing against it), so they read at the same positions;
- the metric reads the logits at END, so the movers' outputs (logits, MLP inputs) count at END.

A head writes where its query is, and each head-to-head edge above lands exactly there (prev
at S1+1 -> induction k/v at S1+1; induction and duplicate at S2 -> S-inhibition k/v at S2;
S-inhibition at END -> movers' q at END). Edges between non-head nodes (the unpruned MLPs)
count at END into the logits and, into an MLP, at every position where some head reads the
input class (IO, S1, S1+1, S2, END). Every position-free edge keeps at least one position, so
collapsing the positions gives back the position-free ground truth. On GPT-2 small with
q/k/v split (the five role positions are distinct in every template) this gives **1,495
edges**:

    input -> heads           928  (prev 24, dup 18, S-inhibition q 34, movers k/v 284 x 3)
    head -> head             124  (one position each: where the source head's query is)
    movers -> output          40  (at END)
    non-head -> non-head     403  (into MLPs 78 x 5 roles, into logits 13 at END)

Without the q/k/v split: 1,019 edges; attention-only: 235 with the split, 155 without.
"""

from __future__ import annotations

from patching.graph import EdgeGraph
from patching.names import QKV, at_position, edge_name, head_name, is_head, mlp_name

# (layer, head) per class, Wang et al. (2022), in the order of ACDC's ``IOI_CIRCUIT``.
HEAD_CLASSES: dict[str, tuple[tuple[int, int], ...]] = {
    "name mover": ((9, 9), (10, 0), (9, 6)),
    "backup name mover": (
        (10, 10), (10, 6), (10, 2), (10, 1), (11, 2), (9, 7), (9, 0), (11, 9),
    ),
    "negative name mover": ((10, 7), (11, 10)),
    "s-inhibition": ((7, 3), (7, 9), (8, 6), (8, 10)),
    "induction": ((5, 5), (5, 8), (5, 9), (6, 9)),
    "duplicate token": ((0, 1), (0, 10), (3, 0)),
    "previous token": ((2, 2), (4, 11)),
}  # fmt: skip

INPUT, OUTPUT = "input", "output"
_MOVERS = ("name mover", "backup name mover", "negative name mover")

# (source class, destination class, destination roles); roles are "" for the output.
CONNECTIONS: tuple[tuple[str, str, str], ...] = (
    (INPUT, "previous token", "qkv"),
    (INPUT, "duplicate token", "qkv"),
    (INPUT, "s-inhibition", "q"),
    *((INPUT, m, "kv") for m in _MOVERS),
    ("previous token", "induction", "kv"),
    ("induction", "s-inhibition", "kv"),
    ("duplicate token", "s-inhibition", "kv"),
    *(("s-inhibition", m, "q") for m in _MOVERS),
    *((m, OUTPUT, "") for m in _MOVERS),
)

# The token roles and the ``data.extra`` keys that hold their positions.
ROLES: dict[str, str] = {
    "IO": "io_pos",
    "S1": "s1_pos",
    "S1+1": "s1_plus1_pos",
    "S2": "s2_pos",
    "END": "end_pos",
}


def _head_reads(q: str, kv: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {"q": (q,), "k": kv, "v": kv}


# Where each destination class reads each input role (see the module docstring).
READS: dict[str, dict[str, tuple[str, ...]]] = {
    "previous token": _head_reads("S1+1", ("S1",)),
    "duplicate token": _head_reads("S2", ("S1",)),
    "induction": _head_reads("S2", ("S1+1",)),
    "s-inhibition": _head_reads("END", ("S2",)),
    **{m: _head_reads("END", ("IO", "S1", "S2")) for m in _MOVERS},
    OUTPUT: {"": ("END",)},
}


def _input_reads() -> tuple[str, ...]:
    """The roles at which some head of the circuit reads the input class."""
    found = {
        where
        for src, dst, roles in CONNECTIONS
        if src == INPUT
        for role in roles
        for where in READS[dst][role]
    }
    return tuple(r for r in ROLES if r in found)


INPUT_READS: tuple[str, ...] = _input_reads()  # non-head -> MLP edges count at these roles

GPT2_SHAPE = (12, 12)  # layers, heads


def _sources(cls: str, n_layers: int) -> list[str]:
    if cls == INPUT:
        return ["embed"] + [mlp_name(layer) for layer in range(n_layers)]
    return [head_name(layer, head) for layer, head in HEAD_CLASSES[cls]]


def _destinations(cls: str, roles: str, n_layers: int) -> list[tuple[str, str]]:
    """(q/k/v-split destination name, role) pairs; role "" for the output."""
    if cls == OUTPUT:
        return [("logits", "")] + [(mlp_name(layer), "") for layer in range(n_layers)]
    return [
        (head_name(layer, head, r), r)
        for layer, head in HEAD_CLASSES[cls]
        for r in roles
        if r in QKV
    ]


def split_ground_truth(graph: EdgeGraph) -> dict[str, tuple[str, ...]]:
    """Each ground-truth edge of the q/k/v-split graph over ``graph``'s model (MLPs included),
    position-free, with the roles at which it counts; edges not in that graph are left out."""
    n_layers = graph.n_layers
    out: dict[str, set[str]] = {}
    for src, dst, roles in CONNECTIONS:
        for s in _sources(src, n_layers):
            for d, r in _destinations(dst, roles, n_layers):
                out.setdefault(edge_name(s, d), set()).update(READS[dst][r])
    full = EdgeGraph(n_layers, graph.n_heads, graph.has_mlp)
    existing = set(full.edge_names)
    out = {e: ps for e, ps in out.items() if e in existing}
    for s, d in full.edge_pairs:
        if not is_head(s) and not is_head(d):
            out[edge_name(s, d)] = set(READS[OUTPUT][""] if d == "logits" else INPUT_READS)
    order = list(ROLES).index
    return {e: tuple(sorted(ps, key=order)) for e, ps in out.items()}


def _check_roles(roles: dict[str, int], n_pos: int) -> None:
    if set(roles) != set(ROLES.values()):
        raise ValueError(f"role positions must have the keys {sorted(ROLES.values())}, got {roles}")
    bad = {k: p for k, p in roles.items() if not isinstance(p, int) or not 0 <= p < n_pos}
    if bad:
        raise ValueError(f"role positions {bad} are outside a graph of {n_pos} positions")


def ioi_ground_truth(graph: EdgeGraph, roles: dict[str, int] | None = None) -> set[str]:
    """Edge names of the IOI circuit in ``graph`` (GPT-2 small shaped).

    roles: for a per-position graph, the token position of each role, keyed like ``data.extra``
        (``io_pos``, ``s1_pos``, ``s1_plus1_pos``, ``s2_pos``, ``end_pos``); ignored otherwise.
    """
    if (graph.n_layers, graph.n_heads) != GPT2_SHAPE or not graph.has_mlp:
        raise ValueError(
            f"the IOI ground truth is defined on GPT-2 small (12 layers x 12 heads with MLPs), "
            f"not a graph of {graph.n_layers} layers x {graph.n_heads} heads "
            f"({'with' if graph.has_mlp else 'without'} MLPs)"
        )
    cfg = graph.config
    if cfg.positions is not None:
        if roles is None:
            raise ValueError(
                "a per-position IOI ground truth needs the token position of each role "
                "(IO, S1, S1+1, S2, END)"
            )
        _check_roles(roles, cfg.positions)
    split = split_ground_truth(graph)
    if cfg.positions is None:
        return graph.project(split)  # q/k/v merged and MLP edges dropped as the graph needs
    return graph.project(
        {at_position(e, roles[ROLES[r]]) for e, where in split.items() for r in where}
    )
