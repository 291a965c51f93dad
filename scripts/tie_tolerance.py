"""Measure how float residue moves edge recovery: a method's AUC on tracr tasks computed in
float32 and float64, under 1 and 2 threads, at several tie tolerances (eval.scoring.metrics.Ties).

    python scripts/tie_tolerance.py [--methods eap,eap-ig] [--tasks tracr-reverse,...]

Prints one line per (task, ablation, method, dtype, threads): the AUC with no tolerance, then at
2**-e for each exponent, and the same on MIB's published IOI scores. eval/scoring/metrics.py and
tasks/tracr_base.py say which tolerance these measurements chose and why.
"""

from __future__ import annotations

import argparse

import torch

from eval.scoring import metrics
from eval.scoring.evaluate import ties_of
from methods import get_method
from patching import PatchableModel
from tasks import get_task
from tasks.problem import Problem

EXPONENTS = (30, 24, 22, 20, 18, 16, 14, 12)


def aucs(task_key: str, ablation: str, key: str, dtype, threads: int) -> list[float]:
    torch.set_num_threads(threads)
    task, method = get_task(task_key), get_method(key)
    data = task.all_data()
    pm = PatchableModel(task.load_model().to(dtype), method.graph.config(data.clean.shape[1]))
    problem = Problem.from_task(task, pm, data, ablation)
    truth = pm.graph.edge_mask(task.ground_truth(pm.graph, ablation)).numpy().astype(bool)
    scores = method(problem).numpy()
    scale = ties_of(problem).scale
    return [
        metrics.roc_auc(truth, scores, method.signed, metrics.Ties(dtype, scale, rtol))
        for rtol in (0.0, *(2.0**-e for e in EXPONENTS))  # 0: no tolerance, the float order
    ]


def mib_ioi_aucs(path: str) -> list[float]:
    """The same sweep on MIB's published EAP-IG scores for IOI on GPT-2 small (no model)."""
    from eval.formats.mib import _truth, read_mib

    f = read_mib(path)
    task = get_task("ioi")
    truth = _truth(task, f.graph, task.default_ablation, f.path)
    s = f.ranking_scores()
    return [
        metrics.roc_auc(truth, s, False, metrics.Ties("float32", 0.0, rtol))
        for rtol in (0.0, *(2.0**-e for e in EXPONENTS))
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", default="eap,eap-ig")
    p.add_argument("--tasks", default="tracr-reverse,tracr-proportion,tracr-hist,tracr-sort-unique")
    p.add_argument("--ablations", default="zero,resample")
    p.add_argument("--mib-ioi", default="../shared/fixtures/mib/mib_ioi_gpt2_eap-ig.json")
    args = p.parse_args()
    print(
        "task ablation method dtype threads | AUC: exact (no ties), then 2**-e for e in", EXPONENTS
    )
    if args.mib_ioi:
        row = mib_ioi_aucs(args.mib_ioi)
        print("ioi (MIB file) resample eap-ig float32 - |", " ".join(f"{a:.5f}" for a in row))
    for task_key in args.tasks.split(","):
        for ablation in args.ablations.split(","):
            for key in args.methods.split(","):
                for dtype in (torch.float32, torch.float64):
                    for threads in (1, 2):
                        row = aucs(task_key, ablation, key, dtype, threads)
                        print(
                            task_key,
                            ablation,
                            key,
                            str(dtype)[6:],
                            threads,
                            "|",
                            " ".join(f"{a:.4f}" for a in row),
                            flush=True,
                        )


if __name__ == "__main__":
    main()
