"""Issue 20, memory that doesn't grow with the input: a large pairs file runs on at most
DEFAULT_N train and HELDOUT_MAX held-out rows unless --n asks for more, and absurd sizes
(--seeds, --n, --repeats, patching.verify's --batch/--pos) exit 2 before anything runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eval import run
from eval.records import RECORDS
from tasks.file_task import DEFAULT_N, HELDOUT_MAX, FileTask, FileTaskSpec
from tests.files import EXAMPLE, ROOT

pytestmark = pytest.mark.usefixtures("restore_tasks")


def _big_file(folder: Path, rows: int) -> Path:
    lines = EXAMPLE.read_text().splitlines()
    path = folder / f"pairs{rows}.csv"
    path.write_text("\n".join([lines[0], *(lines[1 + i % 40] for i in range(rows))]) + "\n")
    return path


def test_large_file_is_capped_by_default(tmp_path):
    task = FileTask(FileTaskSpec(str(_big_file(tmp_path, 3100)), "induction"))
    assert task.max_train() == 2067 and task.n_default() == DEFAULT_N
    assert task.n_heldout() == HELDOUT_MAX == task.make_heldout().n
    assert "1000 of its 2067 train examples" in task.size_note()
    small = FileTask(FileTaskSpec(str(EXAMPLE), "induction"))
    assert small.n_default() == 27 and small.size_note() is None


def test_run_says_what_it_leaves_out(tmp_path, capsys):
    path = _big_file(tmp_path, 3100)
    argv = ["--tasks", str(path), "--model", "induction", "--methods", "random", "--seeds", "9"]
    from eval.lock import FolderLock

    out = tmp_path / "run"
    out.mkdir()
    lock = FolderLock(out)  # stops the run at its last planning step, after the note
    try:
        code = run.main([*argv, "--device", "cpu", "--out", str(out)])
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert code == 2 and "note: task file-pairs3100: 1000 of its 2067 train examples" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "100000000000"], "--seeds 100000000000 is above the limit 10000"),
        (["--n", "10000000"], "--n 10000000 is above the limit 1000000"),
        (["--seeds", "0"], "--seeds must be at least 1"),
    ],
)
def test_absurd_run_sizes_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    code = run.main(["--methods", "random", "--tasks", "induction", "--out", str(out), *argv])
    assert code == 2 and message in capsys.readouterr().err
    assert not (out / RECORDS).exists()


@pytest.mark.parametrize(
    "module, argv, message",
    [
        ("eval.speed.step", ["--repeats", "100000000"], "--repeats 100000000 is above the limit"),
        ("patching.verify", ["--family", "gpt2", "--batch", "0"], "--batch must be at least 1"),
        ("patching.verify", ["--family", "gpt2", "--pos", "-3"], "--pos must be at least 1"),
        ("patching.verify", ["--family", "gpt2", "--batch", "10**9"], "invalid int value"),
        ("patching.verify", ["--family", "gpt2", "--batch", "1000000"], "above the limit 4096"),
    ],
)
def test_absurd_tool_sizes_exit_2(module, argv, message, capsys):
    main = __import__(module, fromlist=["main"]).main
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_verify_on_a_folder_without_a_model_names_it(tmp_path, capsys):
    from patching.verify import main

    assert main(["--model", str(tmp_path)]) == 2
    out = json.loads(capsys.readouterr().out)
    assert "folder without config.json" in out["error"]


_PEAK = """
import resource, sys
from eval import run
code = run.main(sys.argv[1:])
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code)
"""


def _peak_kb(path: Path, out: Path) -> int:
    argv = ["--tasks", str(path), "--model", "induction", "--methods", "random", "--seeds", "1"]
    argv += ["--inline", "--no-plots", "--device", "cpu", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK, *argv], capture_output=True, text=True, cwd=ROOT
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PEAK_KB"))
    _, kb, code = line.split()
    assert code == "0", proc.stderr[-2000:]
    return int(kb)


@pytest.mark.slow
def test_memory_is_flat_in_the_file_size(tmp_path):
    """Peak memory of a default run on 3,000 vs 24,000 rows (benchmark, ~1.5 min): measured
    2026-12 on CPU, 1.75 GB vs 1.80 GB (before: 1.1 GB at 1,000 rows, 22 GB at 100,000)."""
    small = _peak_kb(_big_file(tmp_path, 3000), tmp_path / "s")
    large = _peak_kb(_big_file(tmp_path, 24000), tmp_path / "l")
    assert large < small * 1.15, (small, large)
