"""(Re)compile the tracr tasks' programs and write tasks/tracr_weights/ (needs tracr, JAX).

Usage: python scripts/compile_tracr.py [reverse] [proportion] [--out DIR]
"""

from __future__ import annotations

import sys

from tasks.tracr_common import main

if __name__ == "__main__":
    sys.exit(main(["compile", *sys.argv[1:]]))
