"""Ground truth of the induction task, defined from attention patterns, not by any discovery method.

Heads are classified by their mean attention on held-out clean sequences (data stream
``groundtruth``, never used in training):

- previous-token score: attention from position ``q`` to ``q - 1``, averaged over ``q >= 2``
  (position 1's predecessor is BOS, where idle heads rest anyway);
- induction score: attention from each answer position ``q`` of the repeat (token ``s_i``) to
  ``q - L + 1``, the token after the earlier occurrence of ``s_i``, averaged over answer
  positions.

A head is a previous-token head if its score is at least ``PREV_THRESHOLD`` and a later layer
exists to use it; an induction head if its score is at least ``INDUCTION_THRESHOLD`` and an
earlier layer exists to feed it. Uniform attention would score about 0.10 (previous token,
mean of ``1 / (q + 1)``) and 0.055 (induction, at the answer positions); 0.2 is twice and
3.6 times that, and no head of the shipped model scores within 0.09 of it (scores in
``groundtruth.json``): previous-token a0.h3 0.76 and a0.h0 0.32 (it also rests on BOS and on
itself), the other layer-0 heads 0.10 and 0.07; induction a1.h1 0.87, a1.h2 0.87, a1.h3 0.54,
a1.h0 0.30.

Edges (names as in :mod:`patching.graph`), from the K-composition mechanism of Olsson et al.
(2022): a previous-token head ``P`` attends from ``q`` to ``q - 1`` by position and copies that
token, so the key of an induction head ``I`` at ``j`` says "the token before me was t"; ``I``'s
query (the current token, from the embedding) matches it, and ``I``'s value (the attended
token, from the embedding) is copied to the logits.

- ``embed -> P.q``, ``embed -> P.k``: the positions that make ``P`` attend to ``q - 1``;
- ``embed -> P.v``: the previous token that ``P`` moves;
- ``P -> I.k`` for every ``P`` in an earlier layer than ``I``: "my previous token was t";
- ``embed -> I.q``: the current token; ``embed -> I.v``: the token to copy;
- ``I -> logits``; ``embed -> logits``: the direct path (the model's bigram prior, e.g. "not
  the current token", which also lifts the answer's log-probability).

Without split q/k/v the roles merge into ``embed -> P``, ``P -> I``, ``embed -> I``. The model is
attention-only, so ``include_mlp`` changes nothing. Positions are not part of the ground truth.

Under resample ablation ablating ``embed -> P.q|k`` alone changes almost nothing (they carry
mostly position, which clean and corrupted sequences share), nor does ablating
``embed -> logits`` (the direct path barely moves the answer's log-probability here): they are
included for the mechanism, not for their ablation effect (the tests state how much each role
matters). What the ground truth leaves out: the other layer-0 heads a0.h1 and a0.h2 attend
largely to their own position and to BOS and pass the token on to the induction heads' values
(and a little to their queries). The circuit alone keeps 0.88 of the clean-vs-ablated metric
gap; adding those heads' inputs and their value edges (14 edges) gives 0.97, and their query
edges too 0.99.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from patching.graph import EdgeGraph
from patching.names import QKV, edge_name, head_name, layer_of, with_role
from tasks.induction.data import ModelConfig, answer_mask, generator, repeated
from tasks.induction.model import load, recorded_config

RECORD = Path(__file__).parent / "groundtruth.json"
PREV_THRESHOLD = 0.2
INDUCTION_THRESHOLD = 0.2
SCORE_N = 1024  # held-out sequences
SCORE_SEED = 0


@torch.no_grad()
def head_scores(
    model, cfg: ModelConfig, n: int = SCORE_N, seed: int = SCORE_SEED
) -> dict[str, list[list[float]]]:
    """Previous-token and induction scores ``[n_layers][n_heads]`` on held-out sequences."""
    tokens, seg_len = repeated(n, cfg, generator(seed, "groundtruth"))
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(cfg.n_layers)]
    _, cache = model.run_with_cache(tokens.to(model.W_E.device), names_filter=names)
    q = torch.arange(2, cfg.n_ctx)
    b, qa = answer_mask(seg_len, cfg).nonzero(as_tuple=True)
    prev, ind = [], []
    for name in names:
        pattern = cache[name].float().cpu()  # [n, head, q, k]
        prev.append(pattern[:, :, q, q - 1].mean((0, 2)).tolist())
        ind.append(pattern[b, :, qa, qa - seg_len[b] + 1].mean(0).tolist())
    return {"prev_token": prev, "induction": ind}


def select_heads(scores: dict[str, list[list[float]]]) -> tuple[list[str], list[str]]:
    """``(previous-token heads, induction heads)`` as ``a{l}.h{h}`` names, by the thresholds."""
    prev, ind = scores["prev_token"], scores["induction"]
    n_layers = len(prev)
    p = [
        head_name(layer, h)
        for layer in range(n_layers - 1)
        for h, s in enumerate(prev[layer])
        if s >= PREV_THRESHOLD
    ]
    i = [
        head_name(layer, h)
        for layer in range(1, n_layers)
        for h, s in enumerate(ind[layer])
        if s >= INDUCTION_THRESHOLD
    ]
    return p, i


def circuit_edges(graph: EdgeGraph, prev: list[str], induction: list[str]) -> set[str]:
    """The ground-truth edge names in ``graph`` for the given head classes: the q/k/v-split
    edges below, projected onto the graph's option (:meth:`EdgeGraph.project`, which also
    raises on a name the graph does not have)."""
    edges = {edge_name("embed", "logits")}
    for p in prev:
        edges |= {edge_name("embed", with_role(p, r)) for r in QKV}
    for i in induction:
        edges |= {edge_name("embed", with_role(i, "q")), edge_name("embed", with_role(i, "v"))}
        edges.add(edge_name(i, "logits"))
        edges |= {edge_name(p, with_role(i, "k")) for p in prev if layer_of(p) < layer_of(i)}
    return graph.project(edges)


def compute_record(model, cfg: ModelConfig) -> dict:
    """Scores, thresholds and chosen heads, as stored in ``groundtruth.json``."""
    scores = head_scores(model, cfg)
    prev, ind = select_heads(scores)
    return {
        "scores": {k: [[round(s, 4) for s in row] for row in v] for k, v in scores.items()},
        "thresholds": {"prev_token": PREV_THRESHOLD, "induction": INDUCTION_THRESHOLD},
        "prev_token_heads": prev,
        "induction_heads": ind,
        "data": f"{SCORE_N} clean sequences, data stream 'groundtruth', seed {SCORE_SEED}",
    }


def write_record(record: dict, path: Path = RECORD) -> None:
    path.write_text(json.dumps(record, indent=2) + "\n")


def load_record(path: Path = RECORD) -> dict:
    return json.loads(path.read_text())


def main() -> None:
    """Refresh ``groundtruth.json`` from the shipped checkpoint (after changing a threshold)."""
    record = compute_record(load(), recorded_config())
    write_record(record)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
