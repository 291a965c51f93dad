"""``python -m eval.speed [--family F] ...``: :func:`eval.speed.step.main` (which hands ``--family``
to :mod:`eval.speed.family`)."""

import sys

from eval.speed.step import main

if __name__ == "__main__":
    sys.argv[0] = "python -m eval.speed"  # argparse's prog, not "__main__.py"
    raise SystemExit(main())
