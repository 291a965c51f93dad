"""Issue 20, signals and stops: a KeyboardInterrupt inside an --inline method and a full disk
end the run with a marked run.json and a named problem, never a traceback; a worker whose
runner was SIGKILLed ends within a fraction of a second; under Ray, SIGTERM keeps the local
executor's contract (143, interrupted, resumable)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval import run
from eval.records import RECORDS, RUN_INFO, read_records

ROOT = Path(__file__).resolve().parents[2]
BASE = ["--plugin", "tests.eval.tiny", "--plugin", "tests.eval.faulty", "--no-plots"]
BASE += ["--tasks", "_test-tiny", "--seeds", "1"]


@pytest.fixture(scope="module")
def faulty(tiny):
    import importlib

    yield importlib.import_module("tests.eval.faulty")
    sys.modules.pop("tests.eval.faulty", None)


def test_keyboard_interrupt_in_an_inline_method_marks_the_run(faulty, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [*BASE, "--methods", "_test-grad,_test-keyboard", "--inline", "--out", str(out)]
    assert run.main(argv) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "resume with:" in err
    info = json.loads((out / RUN_INFO).read_text())
    assert info["status"] == "interrupted" and info["finished_jobs"] == 1
    assert [r.method for r in read_records(out)] == ["_test-grad"]


def test_a_full_disk_marks_the_run_and_says_how_to_resume(faulty, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real, calls = run.write_run, []

    def full(folder, records, curves):
        calls.append(1)
        if len(calls) > 2:  # the start and the first job were written; then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder / RECORDS))
        real(folder, records, curves)

    monkeypatch.setattr(run, "write_run", full)
    argv = [*BASE, "--methods", "_test-grad,_test-random,_test-slow", "--inline", "--out", str(out)]
    assert run.main(argv) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "resume with:" in err and "Traceback" not in err
    info = json.loads((out / RUN_INFO).read_text())
    assert info["status"] == "failed" and "No space left" in info["error"]
    assert [r.method for r in read_records(out)] == ["_test-grad"]
    monkeypatch.setattr(run, "write_run", real)
    argv[-1:] = []
    assert run.main([*argv[:-1], "--resume", str(out)]) == 0
    assert len(read_records(out)) == 3


def test_a_worker_ends_when_its_runner_is_gone():
    """eval.isolate's child watches the runner's pid (under the forkserver its parent is the
    server, so PR_SET_PDEATHSIG alone left it writing scores/ for seconds)."""
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    code = f"from eval.isolate import _watch_owner; import time; _watch_owner({owner.pid}); "
    code += "print('ready', flush=True); time.sleep(60)"
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "ready"  # watching (after its imports)
        assert child.poll() is None
        owner.kill()
        owner.wait()
        t0 = time.monotonic()
        assert child.wait(timeout=10) == 137
        assert time.monotonic() - t0 < 2.0
    finally:
        for p in (owner, child):
            if p.poll() is None:
                p.kill()


@pytest.mark.slow  # starts a private Ray instance: ~1 min on a loaded 2-core machine
def test_sigterm_under_ray_marks_the_run_interrupted(tmp_path):
    out = tmp_path / "run"
    argv = [*BASE, "--methods", "_test-grad,_test-slow", "--seeds", "2", "--executor", "ray"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "eval.run", *argv, "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        t0 = time.monotonic()
        while not (out / RECORDS).is_file() or len((out / RECORDS).read_text().splitlines()) < 3:
            assert time.monotonic() - t0 < 240 and proc.poll() is None
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-3000:]
    assert "resume with:" in err
    assert json.loads((out / RUN_INFO).read_text())["status"] == "interrupted"
    assert (out / "summary.md").is_file()
