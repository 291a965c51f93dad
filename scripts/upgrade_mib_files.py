"""Rewrite a run folder's ``mib/<run>.json`` files in EAP-IG's current format, from what the run
kept (``scores/``, ``traces/``, ``circuits/``, ``records.csv``): nodes as ``{"in_graph": bool}``,
the run's circuit marked (eval.formats.mib.export_run). For runs written before that format.

    python scripts/upgrade_mib_files.py RUN_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from eval.formats.mib import MIB, export_run, graph_of_cfg
from eval.records import read_records, run_name


def upgrade(run_dir: Path) -> int:
    n = 0
    for r in read_records(run_dir):
        name = run_name(r.method, r.task, r.seed)
        old = run_dir / MIB / f"{name}.json"
        if not r.ok or not old.is_file():
            continue
        cfg = json.loads(old.read_text())["cfg"]
        found = torch.load(run_dir / "scores" / f"{name}.pt", weights_only=True)
        has_mlp = any(e.startswith("m") or "->m" in e for e in found["edges"])
        graph = graph_of_cfg(cfg, has_mlp)
        if list(graph.edge_names) != list(found["edges"]):
            raise ValueError(f"{name}: the stored edges are not the graph of {old}'s cfg")
        trace_path = run_dir / "traces" / f"{name}.json"
        trace = json.loads(trace_path.read_text()) if trace_path.is_file() else {}
        circuits = json.loads((run_dir / "circuits" / f"{name}.json").read_text())
        truth = np.isin(np.asarray(found["edges"]), circuits.get("ground_truth") or [])
        scores = found["scores"].double().numpy()
        export_run(
            run_dir,
            r.method,
            r.task,
            r.seed,
            graph,
            cfg["d_model"],
            scores,
            trace,
            truth if circuits.get("ground_truth") else None,
            r.signed,
        )
        n += 1
    return n


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    print(f"rewrote {upgrade(folder)} MIB files in {folder / MIB}")
