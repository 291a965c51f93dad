"""Completeness gaps of the integrated-gradients methods by step count, on every shipped task.

For each available task (its default n, seed 0), each ablation it has a ground truth for, each
of ``eap-ig``, ``eap-ig-act``, ``ieg`` and each step count, run the method and read the
``completeness_gap`` its trace records (methods.integrated: |sum - target| / |target| of the
method's own completeness identity). Writes the table to ``results/ig_gaps.md`` (``--out``)
and prints it. The defaults (``DEFAULT_STEPS`` in each method module) are the smallest step
count in the list whose gap is below ``--target`` on every row the table has.

    python -m scripts.ig_gaps [--tasks induction,tracr-reverse] [--steps 5,20,50,200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

METHODS = ("eap-ig", "eap-ig-act", "ieg")


def measure(task_key: str, ablation: str, method: str, steps: int) -> tuple[float, float]:
    from methods import get_method
    from patching.graph import GraphOptions
    from tasks import get_task
    from tasks.problem import build_problem

    task = get_task(task_key)
    problem = build_problem(task, GraphOptions(), task.default_n, 0, ablation)
    m = get_method(method, steps=steps)
    t0 = time.perf_counter()
    m(problem)
    return m.trace["completeness_gap"], time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default="all")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--steps", default="5,20,50,200")
    p.add_argument("--target", type=float, default=0.05, help="gap counted as small")
    p.add_argument("--out", default="results/ig_gaps.md")
    args = p.parse_args(argv)

    import tasks
    from tasks.base import TASKS

    keys = list(TASKS.keys()) if args.tasks == "all" else args.tasks.split(",")
    steps = [int(s) for s in args.steps.split(",")]
    methods = args.methods.split(",")
    rows, skipped = [], []
    for key in keys:
        task = tasks.get_task(key)
        reason = task.unavailable_reason()
        if reason:
            skipped.append(f"- {key}: not measured here ({reason})")
            continue
        for ablation in task.ablations:
            for method in methods:
                gaps, secs = [], []
                for s in steps:
                    gap, sec = measure(key, ablation, method, s)
                    gaps.append(gap)
                    secs.append(sec)
                    print(
                        f"{key} {ablation} {method} steps={s}: gap {gap:.4g} ({sec:.1f}s)",
                        file=sys.stderr,
                    )
                rows.append((key, ablation, method, gaps, secs))

    head = "| task | ablation | method | " + " | ".join(f"gap @{s}" for s in steps)
    head += f" | seconds @{steps[-1]} |"
    lines = [head, "|" + "---|" * (4 + len(steps))]
    for key, abl, method, gaps, secs in rows:
        cells = " | ".join(f"{g:.4f}" for g in gaps)
        lines.append(f"| {key} | {abl} | {method} | {cells} | {secs[-1]:.1f} |")
    smallest = []
    for method in methods:
        mine = [r for r in rows if r[2] == method]
        ok = [s for i, s in enumerate(steps) if all(r[3][i] < args.target for r in mine)]
        smallest.append(f"- {method}: {ok[0] if ok else 'none of ' + args.steps}")
    text = "\n".join(
        [
            "# Completeness gaps of the integrated-gradients methods",
            "",
            "Measured by `python -m scripts.ig_gaps "
            + " ".join(argv if argv is not None else sys.argv[1:])
            + "` (CPU, each task's default n, seed 0; seconds: wall time on a shared machine).",
            "Gap = |sum - target| / |target| of each method's own completeness identity",
            "(methods/integrated.py; eap-ig: edges out of the embedding vs m(clean) - "
            "m(embedding ablated); eap-ig-act: per block, summed; ieg: all edges vs "
            "m(clean) - m(ablated)).",
            "",
            *lines,
            "",
            f"Smallest step count with gap < {args.target} on every row:",
            *smallest,
            "",
            *skipped,
            "",
        ]
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
