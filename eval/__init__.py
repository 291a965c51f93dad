"""The evaluator: metrics, cost measurement, result records, the runner, plots and baselines.

``python -m eval.run`` runs methods on tasks (each (method, task, seed) in its own process),
``python -m eval.plots DIR`` draws a run's plots from its records, and ``python -m eval.baseline
DIR`` turns a run into the baseline that ``eval.run --check`` compares against.
"""

import sys

from eval.shadow import ShadowedPackageError, check_packages

try:  # a user's tasks.py or core/ in the current folder: say so before it breaks something
    check_packages()
except ShadowedPackageError as exc:
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
