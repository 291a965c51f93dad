"""Circuits exchanged with EAP-IG and MIB (Mueller et al. 2025, MIB circuit-localization track).

File format: what ``Graph.to_json`` of hannamw/EAP-IG (commit 795f560, ``src/eap/graph.py``)
writes and ``Graph.from_json`` reads (MIB's ``run_evaluation.py`` loads circuits with it)::

    {"cfg": {"n_layers": 12, "n_heads": 12, "parallel_attn_mlp": false, "d_model": 768},
     "nodes": {"input": {"in_graph": true}, "a0.h0": {"in_graph": false}, ..., "m11": {...},
               "logits": {"in_graph": true}},
     "edges": {"input->a3.h0<v>": {"score": 0.12, "in_graph": true}, "a2.h1->m5": {...},
               "m11->logits": {...}, ...}}

Every key and value type ``from_json`` indexes is present: ``cfg`` with the four keys, each node
``{"in_graph": bool}`` (``logits`` always true, as EAP-IG's ``LogitNode``), each edge a finite
float ``score`` and a bool ``in_graph``. Names (:mod:`patching.mib_names`): our ``embed`` is
MIB's ``input``; our destination ``a3.h0.q`` is the child ``a3.h0`` with the edge suffix ``<q>``.
Only graphs with q/k/v split, MLPs and no positions exist in MIB.

Sign convention (MIB's): a higher score means a more important edge, positive when the edge
supports the task behaviour. EAP-IG's ``attribute`` multiplies the gradient of the metric it is
given by (corrupted - clean); MIB gives it a loss (the negated logit difference), so its
important edges come out positive. Our ``eap``/``eap-ig``/``eap-ig-act`` multiply the gradient of
a higher-is-better metric by (clean - ablated), which is the same number (checked to 1e-6 on
tracr-reverse and induction). Files carry our scores unchanged and are read unchanged; MIB's CPR
ranks by the signed score, so the sign in a file matters.

``in_graph`` marks one circuit, pruned of dangling edges and nodes as EAP-IG's
``apply_topn(..., prune=True)`` prunes (:func:`patching.prune.prune_dangling`, the same rule on
a DAG): a run's file (``mib/<run>.json``) marks the method's own circuit when its trace keeps
one (``circuit``), else its top edges at the MIB size (:data:`MIB_FRACTIONS`) whose edge count
is nearest the ground truth's, else (no ground truth) at :data:`DEFAULT_FRACTION`.

- ``python -m eval.formats.mib export RUN_DIR --out DIR [--method M] [--seed S]``
  ``[--as scores|circuits]`` (or ``circuitbench mib export ...``): MIB's submission layout,
  ``DIR/<method>/<task>_<model>/`` holding ``importances.json`` (scores) or 9 circuit files at
  MIB's sizes (hannamw/MIB-circuit-track README, "Submitting to the MIB Leaderboard"; folder names
  as its ``run_evaluation.py``: ``task.replace('_', '-')``).
- ``python -m eval.formats.mib import FILE --task T``: evaluate a file on one of our tasks. A file
  whose scores are all equal and which marks edges ``in_graph`` (what EAP-IG writes for a circuit
  without scores) is that circuit (1 in, 0 out); any other file is ranked by its scores. When the
  task's model can't be loaded, edge recovery is still scored from the file and the ground truth;
  faithfulness is NaN and ``note`` says why. A bad file exits 2 naming the file and the problem.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.records import atomic_write_text, run_name, to_json
from eval.scoring import metrics
from patching.graph import EdgeGraph
from patching.mib_names import (
    MIB_LOGITS,
    MibNameError,
    from_mib_edge,
    from_mib_node,
    mib_nodes,
    names_mlp,
    to_mib_edge,
)
from patching.prune import prune_dangling

MIB = "mib"  # the run folder's subfolder of MIB circuit files
# MIB's 9 submitted circuit sizes (fractions of all edges; its README lists 0.1% ... 50%)
MIB_FRACTIONS: tuple[float, ...] = tuple(f for f in metrics.FRACTIONS if f < 1)
DEFAULT_FRACTION = 0.05  # the marked size of a run on a task without ground truth
SCORES_FILE = "importances.json"  # MIB's run_attribution.py / run_evaluation.py name
# our model (a task's ``@<model>`` suffix, lower case; plain ``ioi`` is GPT-2 small) -> MIB's
MIB_MODELS = {
    "gpt2": "gpt2",
    "qwen2.5-0.5b": "qwen2.5",
    "gemma-2-2b": "gemma2",
    "llama-3.1-8b": "llama3",
}
MIB_TASKS = {"ioi": "ioi"}  # our task -> MIB's (MIB has ioi, mcqa, arithmetic_*, arc_*)
MIB_TASK_NAMES = (
    "ioi",
    "mcqa",
    "arithmetic_addition",
    "arithmetic_subtraction",
    "arc_easy",
    "arc_challenge",
)
CFG_TYPES = {"n_layers": int, "n_heads": int, "parallel_attn_mlp": bool, "d_model": int}


class MibFormatError(ValueError):
    """An MIB file (or scores to write as one) that does not fit the graph it is for."""


class NonFiniteScoresError(MibFormatError):
    """Scores with NaN or infinite values: EAP-IG's reader needs a number for every edge."""


class NoMibCounterpart(MibFormatError):
    """A task or model MIB's circuit track has no folder for."""


# ----- graphs -----------------------------------------------------------------------------


def supports_mib(graph: EdgeGraph) -> bool:
    """Whether MIB's format can describe ``graph``: q/k/v split, no positions, and the model's
    MLPs in the graph if it has any (an attention-only model's file lists no MLP node or edge;
    EAP-IG's reader loads it with those edges absent, score 0 and not in the graph)."""
    c = graph.config
    return c.split_qkv and c.positions is None and (c.include_mlp or not graph.has_mlp)


def graph_cfg(graph: EdgeGraph, d_model: int) -> dict:
    """MIB's ``cfg`` block of a graph."""
    return {
        "n_layers": graph.n_layers,
        "n_heads": graph.n_heads,
        "parallel_attn_mlp": bool(graph.parallel),
        "d_model": int(d_model),
    }


def graph_of_cfg(cfg: dict, has_mlp: bool = True) -> EdgeGraph:
    """The graph EAP-IG's ``Graph.from_model(cfg)`` builds, as ours (without its MLPs for an
    attention-only model)."""
    return EdgeGraph(cfg["n_layers"], cfg["n_heads"], has_mlp, parallel=cfg["parallel_attn_mlp"])


# ----- which circuit a file marks ---------------------------------------------------------


def nearest_fraction(n_edges: int, n_truth: int | None) -> float:
    """The MIB size whose edge count (:func:`eval.scoring.metrics.n_kept`) is nearest ``n_truth``
    (the smaller on a tie); :data:`DEFAULT_FRACTION` without a ground truth."""
    if not n_truth:
        return DEFAULT_FRACTION
    return min(MIB_FRACTIONS, key=lambda f: (abs(metrics.n_kept(f, n_edges) - n_truth), f))


def top_mask(graph: EdgeGraph, scores, fraction: float, signed: bool = False) -> np.ndarray:
    """The evaluator's top ``fraction`` of edges (:func:`eval.scoring.metrics.circuit_masks`),
    pruned."""
    mask = metrics.circuit_masks(np.asarray(scores, dtype=np.float64), [fraction], signed)[0]
    return prune_dangling(graph.edge_names, mask)


def _as_mask(graph: EdgeGraph, in_graph) -> np.ndarray:
    if in_graph is None:
        return np.zeros(graph.n_edges, dtype=bool)
    if isinstance(in_graph, np.ndarray) and in_graph.dtype == bool:
        if in_graph.shape != (graph.n_edges,):
            raise MibFormatError(f"in_graph mask of shape {in_graph.shape}, not ({graph.n_edges},)")
        return in_graph
    names = set(in_graph)
    unknown = names - set(graph.edge_names)
    if unknown:
        raise MibFormatError(
            f"{len(unknown)} in_graph edges not in the graph, e.g. {sorted(unknown)[:3]}"
        )
    return np.array([n in names for n in graph.edge_names], dtype=bool)


# ----- writing ----------------------------------------------------------------------------


def mib_dict(
    graph: EdgeGraph, d_model: int, scores, in_graph=None, write_scores: bool = True
) -> dict:
    """The EAP-IG/MIB JSON of ``scores`` (one per edge of ``graph``, its order) as a dict.

    ``in_graph``: the circuit (edge names or a boolean mask), pruned here as EAP-IG prunes;
    nodes are in the graph when a kept edge touches them (``logits`` always). ``write_scores``
    False writes ``score: 0.0`` everywhere, as EAP-IG does for a circuit given without scores.
    NonFiniteScoresError for NaN or infinite scores."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (graph.n_edges,):
        raise MibFormatError(f"{scores.shape} scores for a graph of {graph.n_edges} edges")
    if not supports_mib(graph):
        raise MibFormatError(
            f"MIB files describe the q/k/v-split graph with MLPs and without positions; this one "
            f"is {graph.config}"
        )
    bad = int((~np.isfinite(scores)).sum())
    if bad:
        raise NonFiniteScoresError(
            f"{bad} of {graph.n_edges} scores are NaN or infinite; EAP-IG and MIB need a finite "
            "score on every edge, so no MIB file is written"
        )
    kept = prune_dangling(graph.edge_names, _as_mask(graph, in_graph))
    edges, touched = {}, {MIB_LOGITS}
    for name, s, k in zip(graph.edge_names, scores, kept, strict=True):
        mib = to_mib_edge(name)
        edges[mib] = {"score": float(s) if write_scores else 0.0, "in_graph": bool(k)}
        if k:
            src, child = mib.split("->", 1)
            touched |= {src, child.split("<", 1)[0]}
    return {
        "cfg": graph_cfg(graph, d_model),
        "nodes": {n: {"in_graph": n in touched} for n in mib_nodes(graph)},
        "edges": edges,
    }


def write_mib(path, graph: EdgeGraph, d_model: int, scores, in_graph=None, **kw) -> Path:
    """Write the MIB JSON of ``scores`` to ``path`` (atomically); returns the path."""
    text = json.dumps(mib_dict(graph, d_model, scores, in_graph, **kw))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path


def run_circuit(graph: EdgeGraph, scores, trace=None, truth=None, signed: bool = False):
    """The circuit a run's file marks: the trace's ``circuit`` edge list when the method keeps
    one, else its top edges at :func:`nearest_fraction` of the ground truth ``truth`` (a boolean
    mask or None). Returns (edge names or mask, a description of the choice)."""
    circuit = (trace or {}).get("circuit")
    if isinstance(circuit, list):
        return set(circuit), "the method's own circuit"
    n_truth = int(np.asarray(truth).sum()) if truth is not None else None
    f = nearest_fraction(graph.n_edges, n_truth)
    return top_mask(graph, scores, f, signed), f"top {f:g} of the edges"


def export_run(
    folder,
    method: str,
    task: str,
    seed: int,
    graph: EdgeGraph,
    d_model: int,
    scores,
    trace=None,
    truth=None,
    signed: bool = False,
) -> Path | None:
    """Write one run's scores as ``<folder>/mib/<run>.json`` with its circuit marked
    (:func:`run_circuit`). None (nothing written) for a graph MIB's format can't describe."""
    if not supports_mib(graph):
        return None
    scores = np.asarray(scores.detach().double().cpu() if hasattr(scores, "detach") else scores)
    circuit, _ = run_circuit(graph, scores, trace, truth, signed)
    path = Path(folder) / MIB / f"{run_name(method, task, seed)}.json"
    return write_mib(path, graph, d_model, scores, circuit)


# ----- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MibFile:
    """A checked MIB file: its graph (from ``cfg``), scores and ``in_graph`` in graph order."""

    path: Path
    cfg: dict
    graph: EdgeGraph
    scores: np.ndarray
    in_graph: np.ndarray

    @property
    def circuit_only(self) -> bool:
        """All scores equal and some edge marked: a circuit without scores (EAP-IG writes 0.0)."""
        return bool(self.in_graph.any()) and bool(np.all(self.scores == self.scores[0]))

    def ranking_scores(self) -> np.ndarray:
        """What the file is ranked by: its scores, or its circuit (1 in, 0 out) if circuit-only."""
        return self.in_graph.astype(np.float64) if self.circuit_only else self.scores


def _fail(path, problem: str) -> MibFormatError:
    return MibFormatError(f"{path}: {problem}")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _load_json(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"no MIB file {path}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise _fail(path, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise _fail(path, f"not valid JSON ({err}); truncated or not an MIB file?") from None


def check_cfg(path, cfg) -> dict:
    """``cfg`` with the four keys EAP-IG's ``Graph.from_model`` reads, of the right types."""
    if not isinstance(cfg, dict):
        raise _fail(path, f"'cfg' must be an object, got {type(cfg).__name__}")
    for key, kind in CFG_TYPES.items():
        v = cfg.get(key)
        ok = isinstance(v, bool) if kind is bool else _is_number(v) and v == int(v) and v >= 1
        if not ok:
            want = "true or false" if kind is bool else "a positive integer"
            raise _fail(path, f"cfg[{key!r}] must be {want}, got {v!r}")
    return {k: (bool(cfg[k]) if t is bool else int(cfg[k])) for k, t in CFG_TYPES.items()}


def _ours(path, names, convert, what: str) -> dict[str, str]:
    """MIB name -> our name, refusing two names for one thing (``input`` and ``embed``)."""
    out, seen = {}, {}
    for name in names:
        try:
            o = convert(name)
        except MibNameError as err:
            raise _fail(path, str(err)) from None
        if o in seen:
            raise _fail(path, f"{what} {seen[o]!r} and {name!r} are the same ({o!r}); keep one")
        seen[o], out[name] = name, o
    return out


def read_mib(path) -> MibFile:
    """Read and check an MIB file: the keys and value types EAP-IG's reader indexes, ``cfg``
    against the edges, one name per edge and node. MibFormatError names the file and problem;
    FileNotFoundError when there is none."""
    path = Path(path)
    d = _load_json(path)
    if not isinstance(d, dict):
        raise _fail(path, f"not an MIB circuit file: a JSON {type(d).__name__}, not an object")
    missing = [k for k in ("cfg", "nodes", "edges") if k not in d]
    if missing:
        raise _fail(path, f"not an MIB circuit file: no {', '.join(map(repr, missing))}")
    cfg = check_cfg(path, d["cfg"])
    nodes, edges = d["nodes"], d["edges"]
    for key, v in (("nodes", nodes), ("edges", edges)):
        if not isinstance(v, dict):
            raise _fail(path, f"{key!r} must be an object, got {type(v).__name__}")
    graph = graph_of_cfg(cfg, has_mlp=names_mlp(nodes) or names_mlp(edges))
    node_names = _ours(path, nodes, from_mib_node, "nodes")
    known_nodes = {from_mib_node(n) for n in mib_nodes(graph)}
    for name, value in nodes.items():
        if node_names[name] not in known_nodes:
            raise _fail(path, f"node {name!r} is not in the graph of cfg {cfg}")
        if not isinstance(value, dict) or not isinstance(value.get("in_graph"), bool):
            raise _fail(
                path,
                f'node {name!r} is {value!r}; EAP-IG\'s reader needs {{"in_graph": true|false}}',
            )
    edge_names = _ours(path, edges, from_mib_edge, "edges")
    by_ours = {o: edges[m] for m, o in edge_names.items()}
    names = graph.edge_names
    lacking = [n for n in names if n not in by_ours]
    extra = sorted(set(by_ours) - set(names))
    if lacking or extra:
        raise _fail(
            path,
            f"its {len(by_ours)} edges do not match the {len(names)} of its cfg {cfg} "
            f"({len(lacking)} missing, e.g. {lacking[:3]}; {len(extra)} extra, e.g. {extra[:3]})",
        )
    scores = np.empty(len(names))
    in_graph = np.zeros(len(names), dtype=bool)
    for i, n in enumerate(names):
        v = by_ours[n]
        if not isinstance(v, dict):
            want = '{"score": ..., "in_graph": ...}'
            raise _fail(path, f"edge {to_mib_edge(n)!r} is {v!r}, not {want}")
        s, k = v.get("score"), v.get("in_graph")
        if not _is_number(s) or not math.isfinite(s):
            raise _fail(path, f"edge {to_mib_edge(n)!r} has score {s!r}; it needs a finite number")
        if not isinstance(k, bool):
            raise _fail(path, f"edge {to_mib_edge(n)!r} has in_graph {k!r}; it needs true or false")
        scores[i], in_graph[i] = float(s), k
    return MibFile(path, cfg, graph, scores, in_graph)


def load_mib(path) -> dict:
    """The JSON of a checked MIB file (:func:`read_mib`)."""
    read_mib(path)
    return json.loads(Path(path).read_text())


def read_mib_edges(path, in_graph_only: bool = False) -> list[str]:
    """The edges of an MIB file in our names (those marked ``in_graph`` when asked)."""
    f = read_mib(path)
    pairs = zip(f.graph.edge_names, f.in_graph, strict=True)
    return [n for n, k in pairs if k or not in_graph_only]


def mib_scores(d: dict, graph: EdgeGraph) -> np.ndarray:
    """Scores over ``graph``'s edges from an MIB dict, as :meth:`MibFile.ranking_scores`.
    Raises MibFormatError when the edge sets differ."""
    try:
        ours = {from_mib_edge(k): v for k, v in d["edges"].items()}
    except MibNameError as err:
        raise MibFormatError(str(err)) from None
    names = graph.edge_names
    missing = [n for n in names if n not in ours]
    extra = [n for n in ours if n not in set(names)]
    if missing or extra:
        raise MibFormatError(
            f"the MIB file's {len(ours)} edges do not match this graph's {len(names)} "
            f"({len(missing)} missing, e.g. {missing[:3]}; {len(extra)} extra, e.g. {extra[:3]}); "
            "is it from a model of this task's shape?"
        )
    scores = np.asarray([ours[n]["score"] for n in names], dtype=np.float64)
    kept = np.asarray([bool(ours[n]["in_graph"]) for n in names])
    if kept.any() and np.all(scores == scores[0]):
        return kept.astype(np.float64)
    return scores


# ----- evaluating a file on one of our tasks -----------------------------------------------


def _check_task_graph(f: MibFile, graph: EdgeGraph, d_model: int | None, task_key: str) -> None:
    want = {
        "n_layers": graph.n_layers,
        "n_heads": graph.n_heads,
        "parallel_attn_mlp": bool(graph.parallel),
    }
    if d_model is not None:
        want["d_model"] = int(d_model)
    diff = {k: (f.cfg[k], v) for k, v in want.items() if f.cfg[k] != v}
    if diff:
        shown = ", ".join(f"{k} {a} (the task's model: {b})" for k, (a, b) in diff.items())
        raise _fail(f.path, f"cfg does not match task {task_key!r}'s graph: {shown}")


def _truth(task, graph: EdgeGraph, ablation: str, path) -> np.ndarray | None:
    if not task.has_ground_truth:
        return None
    try:
        names = task.ground_truth(graph, ablation)
    except ValueError as err:
        raise _fail(path, f"its graph does not fit task {task.key!r}: {err}") from None
    return graph.edge_mask(names).bool().numpy()


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
    a benchmark run is (loads the task's model); returns the Evaluation."""
    from eval.scoring.evaluate import evaluate
    from patching.graph import GraphOptions
    from tasks.base import get_task
    from tasks.problem import build_problem
    from tasks.splits import build_heldout

    f = read_mib(path)
    task = get_task(task_key)
    ablation = ablation or task.default_ablation
    problem = build_problem(task, GraphOptions(), n or task.n_default(), seed, ablation, device)
    graph = problem.model.graph
    _check_task_graph(f, graph, problem.model.cfg.d_model, task_key)
    truth = _truth(task, graph, ablation, f.path)
    return evaluate(build_heldout(task, problem, ablation), f.ranking_scores(), truth, signed)


def recovery_only(f: MibFile, task_key: str, ablation=None, signed: bool = False) -> dict:
    """Edge recovery of a file against the task's ground truth without loading any model."""
    from tasks.base import get_task

    task = get_task(task_key)
    truth = _truth(task, f.graph, ablation or task.default_ablation, f.path)
    s = f.ranking_scores()
    out = {k: math.nan for k in ("auc", "ap", "precision_at_k")}
    if truth is not None:
        out["auc"] = metrics.roc_auc(truth, s, signed)
        out["ap"] = metrics.average_precision(truth, s, signed)
        out["precision_at_k"] = metrics.precision_at_k(truth, s, signed)
    return out


FAITHFULNESS_KEYS = ("cpr", "cmd", "cpr_log", "cmd_log")


def import_file(path, task_key: str, n=None, seed=0, ablation=None, signed=False) -> dict:
    """What ``eval.formats.mib import`` prints: the evaluator's measures when the task's model
    loads, else recovery only with faithfulness NaN and the reason in ``note``."""
    from tasks.base import get_task

    f = read_mib(path)
    ranked_by = "in_graph circuit" if f.circuit_only else ("score" if signed else "|score|")
    out = {
        "file": str(f.path),
        "task": task_key,
        "n_edges": f.graph.n_edges,
        "n_in_graph": int(f.in_graph.sum()),
        "ranked_by": ranked_by,
    }
    reason = get_task(task_key).unavailable_reason()
    if reason is None:
        try:
            ev = evaluate_file(path, task_key, n, seed, ablation, signed)
        except (OSError, RuntimeError, ImportError) as err:  # weights or tokenizer not loadable
            reason = f"{type(err).__name__}: {err}".splitlines()[0]
        else:
            for key in ("auc", "ap", "precision_at_k", "auroc_mib", *FAITHFULNESS_KEYS):
                out[key] = getattr(ev, key)
            out["n_kept"], out["faithfulness"] = ev.n_kept, ev.faithfulness
            out["note"] = ""
            return out
    out.update(recovery_only(f, task_key, ablation, signed))
    out.update({k: math.nan for k in FAITHFULNESS_KEYS})
    out["note"] = f"faithfulness not measured: the task's model can't be loaded ({reason})"
    return out


# ----- MIB's submission layout --------------------------------------------------------------


def mib_folder_name(task_key: str) -> str:
    """MIB's ``<task>_<model>`` folder of one of our tasks (``ioi`` -> ``ioi_gpt2``,
    ``ioi@Qwen2.5-0.5B`` -> ``ioi_qwen2.5``); NoMibCounterpart when MIB has none."""
    base, _, model = task_key.partition("@")
    model = (model or "gpt2").lower()
    if base not in MIB_TASKS:
        raise NoMibCounterpart(
            f"task {task_key!r} has no MIB counterpart (MIB's circuit track has "
            f"{', '.join(MIB_TASK_NAMES)}; ours maps {sorted(MIB_TASKS)})"
        )
    if model not in MIB_MODELS:
        raise NoMibCounterpart(
            f"task {task_key!r}: model {model!r} is not one of MIB's "
            f"({', '.join(f'{k} -> {v}' for k, v in MIB_MODELS.items())})"
        )
    return f"{MIB_TASKS[base].replace('_', '-')}_{MIB_MODELS[model]}"


def circuit_file_name(fraction: float) -> str:
    return f"circuit_{fraction * 100:g}pct.json"


def export_submission(run_dir, out, method=None, seed=None, kind="scores", log=print) -> list[Path]:
    """Lay out MIB's submission folders ``out/<method>/<task>_<model>/`` from a run folder: one
    ``importances.json`` (``kind="scores"``) or 9 circuit files at :data:`MIB_FRACTIONS`
    (``kind="circuits"``, scores written as 0.0). Each run's graph and width come from its
    ``mib/<run>.json``. Tasks without an MIB counterpart are skipped with a message."""
    from eval.formats.found import read_scores
    from eval.records import read_records

    run_dir, out = Path(run_dir), Path(out)
    records = [r for r in read_records(run_dir) if r.ok and (method is None or r.method == method)]
    if method is not None and not records:
        raise NoMibCounterpart(f"no finished {method!r} run in {run_dir}")
    written: list[Path] = []
    todo: list[tuple[Path, dict]] = []
    chosen: dict[tuple[str, str], object] = {}
    for r in sorted(records, key=lambda r: (r.method, r.task, r.seed)):
        if seed is None or r.seed == seed:
            chosen.setdefault((r.method, r.task), r)
    for (m, task), r in chosen.items():
        try:
            folder = out / m / mib_folder_name(task)
        except NoMibCounterpart as err:
            log(f"skipped {m} on {task}: {err}")
            continue
        src = run_dir / MIB / f"{run_name(m, task, r.seed)}.json"
        if not src.is_file():
            log(f"skipped {m} on {task}: no {src} (its graph has no MIB form)")
            continue
        f = read_mib(src)
        edges, scores = read_scores(run_dir, m, task, r.seed)
        if list(edges) != f.graph.edge_names:
            raise _fail(src, "its edges are not those of the run's scores")
        s = scores.double().numpy()
        if kind == "scores":
            todo.append((folder / SCORES_FILE, mib_dict(f.graph, f.cfg["d_model"], s, f.in_graph)))
        else:
            for frac in MIB_FRACTIONS:
                mask = top_mask(f.graph, s, frac, r.signed)
                d = mib_dict(f.graph, f.cfg["d_model"], s, mask, write_scores=False)
                todo.append((folder / circuit_file_name(frac), d))
        log(f"{folder} <- {m} on {task}, seed {r.seed}")
    for path, d in todo:  # every file checked and built before the first is written
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(d))
        written.append(path)
    return written


# ----- command line -----------------------------------------------------------------------


def _json_out(d: dict) -> str:
    """Standard JSON: a measure that could not be taken (NaN) is ``null``."""
    return to_json(d)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m eval.formats.mib", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="evaluate an EAP-IG/MIB circuit or score file on one task")
    imp.add_argument("file")
    imp.add_argument("--task", required=True)
    imp.add_argument("--method-name", default="mib-import", help="label for the printed result")
    imp.add_argument("--n", type=int, help="examples (default: the task's default_n)")
    imp.add_argument("--seed", type=int, default=0)
    imp.add_argument("--ablation", help="default: the task's default ablation")
    imp.add_argument("--signed", action="store_true", help="rank by signed score (else |score|)")
    exp = sub.add_parser("export", help="MIB's submission folders from a run folder")
    exp.add_argument("run_dir")
    exp.add_argument("--out", required=True)
    exp.add_argument("--method", help="one method (default: every method of the run)")
    exp.add_argument("--seed", type=int, help="which seed (default: each run's lowest)")
    exp.add_argument("--as", dest="kind", choices=("scores", "circuits"), default="scores")
    args = p.parse_args(argv)
    if args.command == "export":
        return _export(args)

    import tasks  # noqa: F401
    from tasks.base import TASKS

    if args.task not in TASKS:
        print(f"unknown task {args.task!r}; choose one of {sorted(TASKS.keys())}", file=sys.stderr)
        return 2
    try:
        out = import_file(args.file, args.task, args.n, args.seed, args.ablation, args.signed)
    except (FileNotFoundError, MibFormatError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(_json_out({"method": args.method_name, **out}))
    return 0


def _export(args) -> int:
    run_dir = Path(args.run_dir)
    if not (run_dir / "records.csv").is_file():
        print(f"error: {run_dir} is not a run folder (no records.csv)", file=sys.stderr)
        return 2
    try:
        written = export_submission(
            run_dir,
            args.out,
            args.method,
            args.seed,
            args.kind,
            log=lambda m: print(m, file=sys.stderr),
        )
    except (FileNotFoundError, MibFormatError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not written:
        print(
            f"error: nothing in {run_dir} has an MIB counterpart; nothing written", file=sys.stderr
        )
        return 2
    print(f"{len(written)} files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
