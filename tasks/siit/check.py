"""Acceptance checks of a learned (SIIT) model, on held-out inputs, and its ground truth.

    python -m tasks.siit.check DIR        # prints the report as JSON, writes DIR/check.json;
                                          # exit 0 only when every check holds

Inputs: the held-out third of the program's input pool (:func:`tasks.splits.pool_split`, the
split the benchmark task scores on; training never sees it), each paired with ``N_PARTNERS``
other held-out inputs as resample sources. Accuracy is over answer positions: the low-level
model's argmax equals the compiled program's output.

1. behaviour: accuracy >= ``LEVEL``;
2. interchange: for every circuit node, accuracy against the program under the same
   interchange (the node's output taken from the source) >= ``LEVEL``;
3. per ablation (resample, mean over the sources, zero):
   - joint sufficiency of the candidates: every non-candidate edge cut *together* keeps
     accuracy >= ``LEVEL``; otherwise the ablation is not offered;
   - necessity: each candidate edge cut alone changes the model's output (argmax at some answer
     position) on at least ``NEED_SHARE`` of the pairs. The edges below that are dropped from
     the ablation's truth one at a time, weakest first, each only if joint sufficiency still
     holds with it and every edge dropped before cut together; an edge that is not needed alone
     but is needed together with the dropped ones stays (``kept_jointly_needed``). The truth is
     the candidates minus the dropped set, verified jointly.
The model passes when 1 and 2 hold and resample ablation is offered.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import Tensor

from patching.graph import GraphConfig
from patching.patched import PatchableModel
from tasks.siit import model as mdl
from tasks.splits import pool_split

LEVEL = 0.99
NEED_SHARE = 0.02
N_PARTNERS = 4
ABLATIONS = ("resample", "mean", "zero")
CHUNK = 8  # mask rows per forward


def pairs(idx: Tensor, seed: int, n_partners: int) -> tuple[Tensor, Tensor]:
    """Each input of ``idx`` ``n_partners`` times, with a partner from ``idx`` (never itself)."""
    gen = torch.Generator().manual_seed(seed)
    n = len(idx)
    base = idx.repeat(n_partners)
    other = torch.randint(n - 1, (len(base),), generator=gen)
    pos = torch.arange(n).repeat(n_partners)
    other = other + (other >= pos).long()
    return base, idx[other]


def program_labels(high: PatchableModel, tokens, node=None, source=None, out_of=None) -> Tensor:
    """The compiled program's output ids on ``tokens`` (``node``'s output taken from
    ``source`` when given; ``out_of``: the mask of the edges out of ``node``)."""
    masks = torch.ones(high.graph.n_edges)
    if node is None:
        ab = high.ablate("zero", tokens)
    else:
        masks[out_of] = 0.0
        ab = high.ablate("resample", tokens, source)
    return high(tokens, masks, ab).argmax(-1)


def _acc(pred: Tensor, labels: Tensor, answer: Tensor) -> float:
    return float((pred[..., answer] == labels[..., answer]).float().mean())


def _values(low: PatchableModel, kind: str, base: Tensor, src: Tensor) -> Tensor:
    if kind == "zero":
        return low.ablate("zero", base).values
    res = low.ablate("resample", base, src).values
    return res if kind == "resample" else res.mean(1, keepdim=True)


def _out_of(graph, node: str) -> Tensor:
    return torch.tensor([s == node for s, _ in graph.edge_pairs])


@torch.no_grad()
def accuracies(low, high, tokens, idx, answer, candidates, nodes, seed, n_partners=N_PARTNERS):
    """Behaviour, interchange per node, and joint sufficiency of ``candidates`` under resample
    and mean ablation, on the pairs of ``idx``."""
    b_idx, s_idx = pairs(idx, seed, n_partners)
    b, s = tokens[b_idx], tokens[s_idx]
    y = program_labels(high, b)
    g = low.graph
    ones = torch.ones(g.n_edges)
    res = low.ablate("resample", b, s)
    out = {"behaviour": _acc(low(b, ones, res).argmax(-1), y, answer)}
    for node in nodes:
        m = ones.clone()
        m[_out_of(g, node)] = 0.0
        want = program_labels(high, b, node, s, _out_of(high.graph, node))
        out[f"iit/{node}"] = _acc(low(b, m, res).argmax(-1), want, answer)
    keep = g.edge_mask(candidates)
    for kind in ("resample", "mean"):
        ab = low.ablated_sources(_values(low, kind, b, s))
        out[f"joint_{kind}"] = _acc(low(b, keep, ab).argmax(-1), y, answer)
    return {k: round(v, 5) for k, v in out.items()}


@torch.no_grad()
def necessity(low, b, ab, edges: list[str], answer: Tensor) -> dict[str, float]:
    """Share of examples whose output (argmax at some answer position) changes when each edge
    alone is cut."""
    g = low.graph
    ones = torch.ones(g.n_edges)
    clean = low(b, ones, ab).argmax(-1)
    share = {}
    for start in range(0, len(edges), CHUNK):
        chunk = edges[start : start + CHUNK]
        masks = ones.repeat(len(chunk), 1)
        for k, e in enumerate(chunk):
            masks[k, g.edge_index(e)] = 0.0
        pred = low(b, masks, ab).argmax(-1)  # [k, B, P]
        changed = (pred[..., answer] != clean[..., answer]).any(-1).float().mean(-1)
        share.update({e: round(float(v), 5) for e, v in zip(chunk, changed, strict=True)})
    return share


@torch.no_grad()
def check(folder: Path) -> dict:
    folder = Path(folder)
    meta = mdl.load_meta(folder)
    graph = GraphConfig(split_qkv=True)
    low = PatchableModel(mdl.load_low(folder), graph)
    high = PatchableModel(mdl.load_high(folder), graph)
    tokens = mdl.encode(meta, meta["inputs"])
    held = pool_split(len(tokens))[1]
    answer = torch.arange(tokens.shape[1]) >= meta["first_answer"]
    candidates, nodes = meta["candidate_edges"], meta["circuit_nodes"]
    acc = accuracies(low, high, tokens, held, answer, candidates, nodes, seed=1)
    b_idx, s_idx = pairs(held, 1, N_PARTNERS)
    b, s = tokens[b_idx], tokens[s_idx]
    y = program_labels(high, b)
    per_ablation = {}
    for kind in ABLATIONS:
        ab = low.ablated_sources(_values(low, kind, b, s))
        share = necessity(low, b, ab, candidates, answer)

        def joint_acc(kept: list[str], ab=ab) -> float:
            return _acc(low(b, low.graph.edge_mask(kept), ab).argmax(-1), y, answer)

        joint_cand = joint_acc(candidates)
        dropped, kept_jointly = [], []
        if joint_cand >= LEVEL:
            # drop the edges that are not needed alone, weakest first, each only while every
            # dropped edge cut together with the non-candidates keeps accuracy >= LEVEL
            weak = sorted((e for e in candidates if share[e] < NEED_SHARE), key=share.get)
            for e in weak:
                trial = [c for c in candidates if c not in (*dropped, e)]
                if joint_acc(trial) >= LEVEL:
                    dropped.append(e)
                else:
                    kept_jointly.append(e)
        truth = sorted(set(candidates) - set(dropped))
        joint = joint_acc(truth)
        per_ablation[kind] = {
            "offered": joint >= LEVEL and bool(truth),
            "joint_sufficiency_candidates": round(joint_cand, 5),
            "joint_sufficiency_truth": round(joint, 5),
            "truth": truth,
            "dropped": sorted(dropped),
            "kept_jointly_needed": sorted(kept_jointly),
            "necessity": share,
        }
    iit = {k: v for k, v in acc.items() if k.startswith("iit/")}
    checks = {
        "behaviour": acc["behaviour"] >= LEVEL,
        "interchange": all(v >= LEVEL for v in iit.values()),
        "resample_sufficiency": per_ablation["resample"]["offered"],
    }
    report = {
        "program": meta["program"],
        "seed": meta["seed"],
        "passes": all(checks.values()),
        "checks": checks,
        "thresholds": {"level": LEVEL, "need_share": NEED_SHARE, "partners": N_PARTNERS},
        "heldout_inputs": len(held),
        "behaviour": acc["behaviour"],
        "interchange": iit,
        "ablations": per_ablation,
        "offered_ablations": [k for k in ABLATIONS if per_ablation[k]["offered"]],
        "candidate_edges": len(candidates),
        "head_level_truth": {k: head_level(v["truth"]) for k, v in per_ablation.items()},
    }
    return report


def head_level(edges: list[str]) -> list[str]:
    """InterpBench's convention: the components (heads, MLPs) the edges touch."""
    return mdl.circuit_nodes(edges)


def write_report(folder: Path, report: dict) -> Path:
    path = Path(folder) / mdl.CHECK_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tasks.siit.check", description=__doc__.split("\n")[0]
    )
    p.add_argument("folder", type=Path)
    args = p.parse_args(argv)
    try:
        report = check(args.folder)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_report(args.folder, report)
    print(json.dumps(report, indent=1))
    return 0 if report["passes"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
