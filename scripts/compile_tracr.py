"""(Re)compile the tracr tasks' programs and write tasks/tracr_weights/ (needs tracr, JAX).

Usage: python scripts/compile_tracr.py [PROGRAM ...] [--out DIR]   (default: every program:
reverse, proportion, hist, sort_unique, pair_balance, shuffle_dyck)

The programs are :data:`tasks.tracr_programs.PROGRAMS`; compiling and converting them to
``HookedModel`` weights (TransformerLens 3 ``HookedTransformer`` layout) is :mod:`models.tracr`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.tracr_programs import PROGRAMS, WEIGHTS_DIR, write_weights  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Compile each named program (default: every program) and write its weights."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("programs", nargs="*", default=sorted(PROGRAMS), help=str(sorted(PROGRAMS)))
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args(argv)
    for name in args.programs:
        for path in write_weights(name, args.out):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
