"""Shared check of a task's ground-truth circuit (not a test module): the output error of the
circuit alone and, optionally, of the circuit minus each of its edges in turn."""

from __future__ import annotations

import torch

from patching.graph import GraphConfig
from patching.patched import PatchableModel


def circuit_errors(task, model, data, config: GraphConfig, ablation: str, output_error,
                   drop_each: bool = False):  # fmt: skip
    """``(names, errors)``: the ground truth's edge names on ``config`` and ``output_error`` of
    the circuit (row 0) and, with ``drop_each``, of the circuit minus each edge (rows 1..),
    every other edge ablated under ``ablation``."""
    run = PatchableModel(model, config)
    names = sorted(task.ground_truth(run.graph, ablation))
    full = run.graph.edge_mask(names)
    masks = [full]
    if drop_each:
        masks += [full - run.graph.edge_mask([n]) for n in names]
    ab = run.ablate(ablation, data.clean, data.corrupted)
    with torch.no_grad():
        logits = run(data.clean, torch.stack(masks), ab)
    return names, output_error(task, logits, data)
