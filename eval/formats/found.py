"""What a run found: its per-edge scores and its method's trace, as files other tools read.

In a run folder, for each run that produced scores (``<run>`` = ``<method>__<task>__seed<s>``,
:func:`eval.records.run_name`):

- ``scores/<run>.csv``: columns ``edge,score``, one row per edge in the graph's edge order
  (``pandas.read_csv``);
- ``scores/<run>.pt``: ``{"edges": [names], "scores": float32 tensor [n_edges]}``, read with
  ``torch.load(path, weights_only=True)``;
- ``traces/<run>.json``: the method's trace (``Method.trace``; NaN written as null).

The edge names are the graph's (``EdgeGraph.edge_names``), so a circuit can be rebuilt, compared
or drawn without re-running the method.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from eval.records import atomic_write_text, run_name, to_json

SCORES = "scores"
TRACES = "traces"


def scores_csv(edges: list[str], scores: Float[Tensor, " n_edges"]) -> str:
    """The ``edge,score`` CSV text of one run's scores."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["edge", "score"])
    writer.writerows(zip(edges, scores.tolist(), strict=True))
    return buf.getvalue()


def write_found(
    folder: str | Path,
    method: str,
    task: str,
    seed: int,
    edges: list[str],
    scores: Float[Tensor, " n_edges"],
    trace: dict[str, Any],
) -> None:
    """Write one run's scores (CSV and ``.pt``) and trace (JSON) into the run ``folder``."""
    if len(edges) != scores.shape[0]:
        raise ValueError(f"{len(edges)} edge names for {scores.shape[0]} scores")
    folder, name = Path(folder), run_name(method, task, seed)
    (folder / SCORES).mkdir(parents=True, exist_ok=True)
    (folder / TRACES).mkdir(parents=True, exist_ok=True)
    scores = scores.detach().float().cpu()
    atomic_write_text(folder / SCORES / f"{name}.csv", scores_csv(edges, scores))
    pt = folder / SCORES / f"{name}.pt"
    tmp = pt.with_name(f".{pt.name}.{os.getpid()}.tmp")
    try:
        torch.save({"edges": list(edges), "scores": scores.clone()}, tmp)
        os.replace(tmp, pt)
    finally:
        if tmp.exists():
            tmp.unlink()
    atomic_write_text(folder / TRACES / f"{name}.json", to_json(trace))


def read_scores(folder: str | Path, method: str, task: str, seed: int) -> tuple[list[str], Tensor]:
    """One run's edge names and scores, from its ``.pt`` file."""
    path = Path(folder) / SCORES / f"{run_name(method, task, seed)}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no scores {path.name} in {folder}/{SCORES}")
    try:
        data = torch.load(path, weights_only=True)
        edges, scores = data["edges"], data["scores"]
    except Exception as exc:  # torch.load raises many kinds on a damaged file
        raise DamagedFileError(
            f"{path} is damaged ({type(exc).__name__}: {str(exc)[:120]}); delete it and rerun "
            f"the job, or rerun the run with --overwrite"
        ) from None
    return edges, scores


class DamagedFileError(ValueError):
    """A file of a run folder that can't be read back (truncated or overwritten)."""


def read_trace(folder: str | Path, method: str, task: str, seed: int) -> dict[str, Any]:
    """One run's method trace (null read back as None)."""
    path = Path(folder) / TRACES / f"{run_name(method, task, seed)}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no trace {path.name} in {folder}/{TRACES}")
    return json.loads(path.read_text())


def trace_dict(trace: Any) -> dict[str, Any]:
    """A method's trace, checked to be a dict (the contract of ``Method.trace``)."""
    if not isinstance(trace, dict):
        raise TypeError(f"a method's trace must be a dict, got {type(trace).__name__}")
    return trace


def trace_summary(trace: dict[str, Any]) -> tuple[int | None, bool | None, float]:
    """The standard keys of a trace (``steps``, ``stopped_early``, ``final_loss``) as the
    records.csv columns take them; None / NaN where the trace lacks one."""
    steps, stopped, loss = trace.get("steps"), trace.get("stopped_early"), trace.get("final_loss")
    return (
        None if steps is None else int(steps),
        None if stopped is None else bool(stopped),
        math.nan if loss is None else float(loss),
    )
