"""The ``circuitbench`` command and the check for a user's module hiding one of our packages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core import cli

ROOT = Path(__file__).resolve().parent.parent


def _run(args, cwd, **kw):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT) if kw.get("with_root") else ""
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_usage_and_unknown_command(capsys):
    assert cli.main(["--help"]) == 0
    assert "circuitbench {run|compare" in capsys.readouterr().out
    assert cli.main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err


def test_python_m_from_a_folder_with_tasks_py_names_the_file(tmp_path):
    (tmp_path / "tasks.py").write_text("x = 1\n")
    # the current folder first, then this checkout (whatever else the environment installed)
    r = _run([sys.executable, "-m", "eval.run", "--list"], tmp_path, with_root=True)
    assert r.returncode == 2, r.stderr
    assert f"'tasks' is {tmp_path / 'tasks.py'}" in r.stderr
    assert "circuitbench" in r.stderr and "Traceback" not in r.stderr


def test_circuitbench_works_from_that_folder(tmp_path):
    (tmp_path / "tasks.py").write_text("x = 1\n")
    (tmp_path / "core.py").write_text("x = 1\n")
    code = "import sys; sys.path[0] = %r; from core.cli import main; sys.exit(main())"
    # as the console script does: the current folder is not on sys.path, our root is
    r = _run([sys.executable, "-c", code % str(ROOT), "run", "--list"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "methods:" in r.stdout and "tasks:" in r.stdout


def test_every_command_has_a_main_and_names_a_runnable_module():
    import importlib
    import importlib.util

    for name, module in cli.COMMANDS.items():
        assert callable(importlib.import_module(module).main), name
        target = module.removesuffix(".__main__")  # what `python -m` is given
        spec = importlib.util.find_spec(target)
        assert spec is not None, name
        if spec.submodule_search_locations is not None:  # a package: python -m runs __main__
            assert importlib.util.find_spec(f"{target}.__main__") is not None, name
    assert "python -m eval.speed\n" in cli.usage() + "\n"
