"""``circuitbench``: one command for every tool, usable from any folder.

    circuitbench run --methods all --tasks all        # python -m eval.run ...
    circuitbench compare RUN_DIR --metric cpr         # python -m eval.scoring.compare ...
    circuitbench circuit | mib | baseline | plots | verify | speed ...

These subcommand names are the stable ones; the modules behind them may move (``compare``,
``circuit`` and ``mib`` moved into ``eval.scoring`` and ``eval.formats``).

The console script does not put the current folder on ``sys.path`` (``python -m`` does), so a
user's own ``tasks.py`` or ``core.py`` can't hide this project's packages; the check in
:mod:`eval.shadow` still runs first and names any module that does.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {  # subcommand -> module whose main(argv) it runs
    "run": "eval.run",
    "compare": "eval.scoring.compare",
    "circuit": "eval.formats.circuit",
    "mib": "eval.formats.mib",
    "baseline": "eval.baseline",
    "plots": "eval.plots",
    "verify": "patching.verify",
    "speed": "eval.speed.__main__",  # python -m eval.speed
}


def module_command(module: str) -> str:
    """``python -m`` of a command's module (a package's ``__main__`` runs as the package)."""
    return f"python -m {module.removesuffix('.__main__')}"


def usage() -> str:
    names = "|".join(COMMANDS)
    lines = [f"usage: circuitbench {{{names}}} [ARGS ...]", ""]
    lines += [f"  {k:9s} {module_command(v)}" for k, v in COMMANDS.items()]
    lines += ["", "circuitbench COMMAND --help: that command's options"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if sys.path and sys.path[0] in ("", "."):
        sys.path.pop(0)  # never the current folder (python -m core.cli puts it there)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n{usage()}", file=sys.stderr)
        return 2
    from eval.shadow import ShadowedPackageError, check_packages

    try:
        check_packages()
    except ShadowedPackageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command])
    sys.argv = [f"circuitbench {command}", *rest]
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
