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
"""

from __future__ import annotations

from patching.graph import QKV, EdgeGraph

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

GPT2_SHAPE = (12, 12)  # layers, heads


def _is_head(node: str) -> bool:
    return node.startswith("a")


def _sources(cls: str, graph: EdgeGraph) -> list[str]:
    if cls == INPUT:
        return ["embed"] + [f"m{layer}" for layer in range(graph.n_layers)]
    return [f"a{layer}.h{head}" for layer, head in HEAD_CLASSES[cls]]


def _destinations(cls: str, roles: str, graph: EdgeGraph) -> list[str]:
    if cls == OUTPUT:
        return ["logits"] + [f"m{layer}" for layer in range(graph.n_layers)]
    heads = [f"a{layer}.h{head}" for layer, head in HEAD_CLASSES[cls]]
    if not graph.config.split_qkv:
        return heads
    return [f"{h}.{r}" for h in heads for r in roles if r in QKV]


def ioi_ground_truth(graph: EdgeGraph) -> set[str]:
    """Edge names of the IOI circuit in ``graph`` (a GPT-2-small-shaped, position-free graph)."""
    if (graph.n_layers, graph.n_heads) != GPT2_SHAPE or not graph.has_mlp:
        raise ValueError(
            f"the IOI ground truth is defined on GPT-2 small (12 layers x 12 heads with MLPs), "
            f"not a graph of {graph.n_layers} layers x {graph.n_heads} heads "
            f"({'with' if graph.has_mlp else 'without'} MLPs)"
        )
    if graph.config.positions is not None:
        raise ValueError("the IOI ground truth has no per-position form yet; use positions=None")
    in_graph = set(graph.edge_names)
    wanted = {
        f"{s}->{d}"
        for src, dst, roles in CONNECTIONS
        for s in _sources(src, graph)
        for d in _destinations(dst, roles, graph)
    }
    non_head = {e for e in in_graph if not any(_is_head(n) for n in e.split("->"))}
    return (wanted & in_graph) | non_head
