"""Circuits exchanged in MIB's format (Mueller et al. 2025, MIB circuit-localization track).

MIB takes the JSON that ``Graph.to_json`` of hannamw/EAP-IG writes::

    {"cfg": {"n_layers": 12, "n_heads": 12, "parallel_attn_mlp": false, "d_model": 768},
     "nodes": {"input": true, "a0.h0": true, ..., "m11": true, "logits": true},
     "edges": {"input->a3.h0<v>": {"score": 0.12, "in_graph": true}, "a2.h1->m5": {...},
               "m11->logits": {...}, ...}}

Names: our ``embed`` is MIB's ``input``; our destination ``a3.h0.q`` is the child ``a3.h0``
with the edge suffix ``<q>``. Only graphs with q/k/v split and no positions exist in MIB.

- :func:`write_mib` / :func:`export_run`: our scores -> an MIB file (``mib/<run>.json`` in a
  run folder; the worker writes one per run). ``in_graph`` marks the edges given (default: the
  edges of the method's own circuit when it declares one in its trace, else none); every
  edge carries its score, so MIB's evaluation (which ranks by score) can use it.
- :func:`read_mib_edges`: the edges of an MIB file in our names (all, or those in the graph).
- ``python -m eval.mib import FILE --task T``: evaluate an MIB circuit or score file on one of
  our tasks with our evaluator (edge recovery against the task's ground truth, faithfulness).
  A score file is ranked by its scores; a file without scores is its ``in_graph`` circuit
  (score 1 in, 0 out).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from eval.records import atomic_write_text, run_name
from patching.graph import EdgeGraph
from patching.names import EMBED, QKV, parse_edge

MIB = "mib"  # the run folder's subfolder of MIB circuit files
MIB_INPUT = "input"


class MibFormatError(ValueError):
    """An MIB file that does not fit the graph it is read on."""


def _mib_node(name: str) -> str:
    return MIB_INPUT if name == EMBED else name


def to_mib_edge(name: str) -> str:
    """Our edge name -> MIB's: ``embed->a3.h0.v`` -> ``input->a3.h0<v>``."""
    e = parse_edge(name)
    if e.position is not None:
        raise MibFormatError(f"MIB graphs have no positions; cannot name {name!r}")
    dst = e.dst
    if dst.kind == "head":
        if dst.role is None:
            raise MibFormatError(f"MIB graphs split q/k/v inputs; {name!r} has no role")
        child = f"{_mib_node(dst.name.rsplit('.', 1)[0])}<{dst.role}>"
    else:
        child = dst.name
    return f"{_mib_node(e.src.name)}->{child}"


def from_mib_edge(name: str) -> str:
    """MIB's edge name -> ours: ``input->a3.h0<v>`` -> ``embed->a3.h0.v``."""
    src, sep, child = name.partition("->")
    if not sep:
        raise MibFormatError(f"bad MIB edge name {name!r}; expected 'parent->child[<q|k|v>]'")
    src = EMBED if src == MIB_INPUT else src
    if child.endswith(">") and "<" in child:
        child, role = child[:-1].split("<", 1)
        if role not in QKV:
            raise MibFormatError(f"bad MIB edge name {name!r}: role {role!r} not in q, k, v")
        child = f"{child}.{role}"
    ours = f"{src}->{child}"
    try:
        parse_edge(ours)
    except ValueError as err:
        raise MibFormatError(f"bad MIB edge name {name!r}: {err}") from None
    return ours


def supports_mib(graph: EdgeGraph) -> bool:
    """Whether MIB's format can describe ``graph`` (q/k/v split, no positions, with MLPs)."""
    c = graph.config
    return c.split_qkv and c.positions is None and c.include_mlp


def graph_cfg(graph: EdgeGraph, d_model: int) -> dict:
    """MIB's ``cfg`` block of a graph."""
    return {
        "n_layers": graph.n_layers,
        "n_heads": graph.n_heads,
        "parallel_attn_mlp": bool(graph.parallel),
        "d_model": int(d_model),
    }


def mib_dict(graph: EdgeGraph, d_model: int, scores, in_graph: set[str] | None = None) -> dict:
    """The MIB JSON of ``scores`` (one per edge of ``graph``, its order) as a dict."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (graph.n_edges,):
        raise MibFormatError(f"{scores.shape[0]} scores for a graph of {graph.n_edges} edges")
    if not supports_mib(graph):
        raise MibFormatError(
            f"MIB files describe the q/k/v-split graph without positions; this one is "
            f"{graph.config}"
        )
    in_graph = set(in_graph or ())
    edges, touched = {}, set()
    for name, s in zip(graph.edge_names, scores, strict=True):
        kept = name in in_graph
        mib = to_mib_edge(name)
        edges[mib] = {"score": None if math.isnan(s) else float(s), "in_graph": kept}
        if kept:
            e = parse_edge(name)
            touched |= {_mib_node(e.src.name), mib.split("->", 1)[1].split("<", 1)[0]}
    nodes = [MIB_INPUT, *[s for s in graph.sources if s != EMBED], "logits"]
    return {
        "cfg": graph_cfg(graph, d_model),
        "nodes": {n: n in touched for n in nodes},
        "edges": edges,
    }


def write_mib(path, graph: EdgeGraph, d_model: int, scores, in_graph=None) -> Path:
    """Write the MIB JSON of ``scores`` to ``path`` (atomically); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(mib_dict(graph, d_model, scores, in_graph)))
    return path


def export_run(
    folder, method: str, task: str, seed: int, graph: EdgeGraph, d_model: int, scores, trace=None
) -> Path | None:
    """Write one run's scores as ``<folder>/mib/<run>.json`` (``graph``: the run's graph,
    ``d_model``: its model's width).
    ``in_graph``: the trace's ``circuit`` edge list when the method keeps one, else none.
    None (nothing written) for a graph MIB's format can't describe."""
    circuit = (trace or {}).get("circuit")
    in_graph = set(circuit) if isinstance(circuit, list) else None
    path = Path(folder) / MIB / f"{run_name(method, task, seed)}.json"
    if not supports_mib(graph):
        return None
    return write_mib(path, graph, d_model, scores, in_graph)


def load_mib(path) -> dict:
    """The JSON of an MIB file, checked for the keys every MIB file has."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no MIB file {path}")
    d = json.loads(path.read_text())
    if not isinstance(d, dict) or not isinstance(d.get("edges"), dict):
        raise MibFormatError(f"{path} is not an MIB circuit file: no 'edges' object")
    return d


def read_mib_edges(path, in_graph_only: bool = False) -> list[str]:
    """The edges of an MIB file in our names (those marked ``in_graph`` when asked)."""
    edges = load_mib(path)["edges"]
    return [
        from_mib_edge(k)
        for k, v in edges.items()
        if not in_graph_only or bool(v.get("in_graph", False))
    ]


def mib_scores(d: dict, graph: EdgeGraph) -> np.ndarray:
    """Scores over ``graph``'s edges from an MIB dict: its scores when every edge has one,
    else its ``in_graph`` circuit as 1/0. Raises MibFormatError when the edge sets differ."""
    ours = {from_mib_edge(k): v for k, v in d["edges"].items()}
    names = graph.edge_names
    missing = [n for n in names if n not in ours]
    known = set(names)
    extra = [n for n in ours if n not in known]
    if missing or extra:
        raise MibFormatError(
            f"the MIB file's {len(ours)} edges do not match this graph's {len(names)} "
            f"({len(missing)} missing, e.g. {missing[:3]}; {len(extra)} extra, e.g. {extra[:3]}); "
            "is it from a model of this task's shape?"
        )
    raw = [ours[n].get("score") for n in names]
    if all(s is not None for s in raw):
        return np.asarray(raw, dtype=np.float64)
    return np.asarray([float(bool(ours[n].get("in_graph", False))) for n in names])


def evaluate_file(
    path,
    task_key: str,
    n: int | None = None,
    seed: int = 0,
    ablation=None,
    signed: bool = False,
    device: str = "cpu",
):
    """Evaluate an MIB file on ``task_key`` with our evaluator, on the task's held-out split as
    a benchmark run is; returns the Evaluation (recovery NaN for a task without ground truth)."""
    import tasks  # noqa: F401  (registers every task)
    from eval.evaluate import evaluate
    from patching.graph import GraphOptions
    from tasks.base import get_task
    from tasks.problem import build_problem
    from tasks.splits import build_heldout

    d = load_mib(path)
    task = get_task(task_key)
    ablation = ablation or task.default_ablation
    problem = build_problem(task, GraphOptions(), n or task.n_default(), seed, ablation, device)
    graph = problem.model.graph
    scores = mib_scores(d, graph)
    truth = (
        graph.edge_mask(task.ground_truth(graph, ablation)).bool().numpy()
        if task.has_ground_truth
        else None
    )
    # scored as a run is: on the task's held-out split (tasks.splits)
    return evaluate(build_heldout(task, problem, ablation), scores, truth, signed)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.mib", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="evaluate an MIB circuit or score file on one task")
    imp.add_argument("file")
    imp.add_argument("--task", required=True)
    imp.add_argument("--method-name", default="mib-import", help="label for the printed result")
    imp.add_argument("--n", type=int, help="examples (default: the task's default_n)")
    imp.add_argument("--seed", type=int, default=0)
    imp.add_argument("--ablation", help="default: the task's default ablation")
    imp.add_argument("--signed", action="store_true", help="rank by signed score (else |score|)")
    args = p.parse_args(argv)

    import tasks  # noqa: F401
    from tasks.base import TASKS

    if args.task not in TASKS:
        print(f"unknown task {args.task!r}; choose one of {sorted(TASKS.keys())}", file=sys.stderr)
        return 2
    try:
        load_mib(args.file)
        ev = evaluate_file(args.file, args.task, args.n, args.seed, args.ablation, args.signed)
    except (FileNotFoundError, MibFormatError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = {"method": args.method_name, "task": args.task, "file": str(args.file)}
    for key in ("auc", "ap", "precision_at_k", "cpr", "cmd", "cpr_log", "cmd_log"):
        out[key] = getattr(ev, key)
    out["n_kept"], out["faithfulness"] = ev.n_kept, ev.faithfulness
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
