"""Old -> new cells of the protocol change (README "What changed"), from two run folders.

    python scripts/protocol_diff.py OLD_RUN NEW_RUN

OLD_RUN: a run of the code before the change (ceil sizes, no pruning, ties by index, in-sample);
NEW_RUN: the same methods and tasks now. Prints two markdown tables: A -> B -> C per cell (A the
old record, B the old run's scores under the new protocol in-sample on the old run's data, C the
new record), and the old scores' CPR in-sample as each new rule is added. Both folders must hold
``scores/`` (eval.formats.found). Tracr tasks' old data is ``TracrTask.all_data(seed)`` (the whole
pool in the order the old ``make_data(pool, seed)`` drew it); other tasks' is ``make_data(n,
seed)``.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import torch

from eval.records import read_records
from eval.scoring import metrics as M
from eval.scoring.evaluate import evaluate, metric_of_masks
from methods.base import get_method
from patching import PatchableModel
from patching.prune import prune_dangling
from tasks.base import get_task
from tasks.problem import Problem


def old_problem(record, old_dir: str):
    m, t, abl, seed = record.key
    task, method = get_task(t), get_method(m, seed=seed)
    saved = torch.load(f"{old_dir}/scores/{m}__{t}__seed{seed}.pt", weights_only=True)
    data = task.all_data(seed) if hasattr(task, "all_data") else task.make_data(record.n, seed)
    pm = PatchableModel(task.load_model("cpu"), method.graph.config(data.clean.shape[1]))
    if list(pm.graph.edge_names) != saved["edges"]:
        raise ValueError(f"{m} on {t}: the saved scores are for another graph")
    problem = Problem.from_task(task, pm, data, abl)
    truth = pm.graph.edge_mask(task.ground_truth(pm.graph, abl)).bool().numpy()
    return task, method, problem, truth, saved["scores"].numpy().astype(np.float64)


def stepwise_cpr(problem: Problem, scores: np.ndarray, signed: bool) -> list[float]:
    """CPR under the old rules, + floor sizes, + pruning (ties still by edge index)."""
    n, names = problem.n_edges, problem.model.graph.edge_names
    order = M.ranking(scores, signed)

    def cpr(sizes, prune):
        masks = np.zeros((len(sizes), n), bool)
        for i, k in enumerate(sizes):
            masks[i, order[:k]] = True
        if prune:
            masks = prune_dangling(names, masks)
        v = metric_of_masks(problem, torch.from_numpy(masks)).double().numpy()
        f = M.normalised_faithfulness(v, problem.metric_clean, problem.metric_ablated)
        return M.cpr(M.FRACTIONS, f)

    ceil = [min(n, math.ceil(f * n - 1e-9)) for f in M.FRACTIONS]
    floor = [M.n_kept(f, n) for f in M.FRACTIONS]
    return [cpr(ceil, False), cpr(floor, False), cpr(floor, True)]


def main(old_dir: str, new_dir: str) -> None:
    new = {r.key: r for r in read_records(new_dir) if r.ok}
    cells, steps = [], []
    for a in read_records(old_dir):
        c = new.get(a.key)
        if not a.ok or c is None:
            continue
        _, method, problem, truth, scores = old_problem(a, old_dir)
        swept = bool(type(method).threshold_swept)
        b = evaluate(problem, scores, truth, a.signed, threshold_swept=swept)
        m, t = a.method, a.task
        cells.append(
            f"| {m} | {t} | {a.cpr:.3f} -> {b.cpr:.3f} -> {c.cpr:.3f} | "
            f"{a.cmd:.3f} -> {b.cmd:.3f} -> {c.cmd:.3f} | {a.auc:.3f} -> {c.auc:.3f} | "
            f"{c.auc_pareto:.3f} | {c.auroc_mib:.3f} |"
        )
        s = stepwise_cpr(problem, scores, a.signed)
        steps.append(f"| {m} | {t} | " + " | ".join(f"{x:.3f}" for x in [*s, b.cpr]) + " |")
    print(
        "| method | task | CPR A -> B -> C | CMD A -> B -> C | AUC old -> new | auc_pareto "
        "| auroc_mib |\n|---|---|---|---|---|---|---|"
    )
    print("\n".join(cells))
    print("\n| method | task | old | + floor sizes | + pruning | + ties averaged (= B) |")
    print("|---|---|---|---|---|---|")
    print("\n".join(steps))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2])
