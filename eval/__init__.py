"""The runner: executors, workers, result records, resume, summary, plots and baselines.

``python -m eval.run`` runs methods on tasks (each (method, task, seed) in its own process),
``python -m eval.plots DIR`` draws a run's plots from its records, and ``python -m eval.baseline
DIR`` turns a run into the baseline that ``eval.run --check`` compares against.

Subpackages: :mod:`eval.scoring` (metrics, the evaluator, cost, statistics, comparisons),
:mod:`eval.formats` (what a run writes for other tools: scores, traces, circuits, MIB files) and
:mod:`eval.speed` (speed benchmarks of the patched forward, ``python -m eval.speed``).
"""

import sys

from eval.shadow import ShadowedPackageError, check_packages

try:  # a user's tasks.py or core/ in the current folder: say so before it breaks something
    check_packages()
except ShadowedPackageError as exc:
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
