"""D4: SIGINT / SIGTERM stop the workers, mark run.json interrupted with counts, write the summary
of what finished, leave no temporary folders, exit 130 / 143 with one line saying how to resume;
and --resume then finishes the run."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from eval import run
from eval.records import RECORDS, RUN_INFO, read_records

ARGS = [
    "--plugin",
    "tests.eval.tiny",
    "--plugin",
    "tests.eval.faulty",
    "--no-plots",
    "--methods",
    "_test-grad,_test-slow",
    "--tasks",
    "_test-tiny",
    "--seeds",
    "2",
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def faulty(tiny):
    import importlib

    yield importlib.import_module("tests.eval.faulty")
    sys.modules.pop("tests.eval.faulty", None)


def _n_records(out: Path) -> int:
    try:
        return len((out / RECORDS).read_text().splitlines()) - 1
    except FileNotFoundError:
        return 0


def _wait_for_records(out: Path, n: int, limit_s: float = 120.0) -> None:
    t0 = time.monotonic()
    while _n_records(out) < n:
        assert time.monotonic() - t0 < limit_s, f"no {n} records in {out} after {limit_s} s"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_marks_the_run_and_resume_finishes_it(faulty, tmp_path, capsys, sig):
    out = tmp_path / "run"

    def send():  # when both _test-grad jobs are recorded, _test-slow seed 0 is running
        _wait_for_records(out, 2)
        time.sleep(0.5)
        os.kill(os.getpid(), sig)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    code = run.main([*ARGS, "--out", str(out)])
    sender.join()
    err = capsys.readouterr().err
    assert code == 128 + sig
    info = json.loads((out / RUN_INFO).read_text())
    assert info["status"] == "interrupted" and info["signal"] == sig.name
    assert (info["finished_jobs"], info["pending_jobs"]) == (2, 2)
    summary = (out / "summary.md").read_text()
    assert "2 of 2 runs ok" in summary
    assert f"**Interrupted** by {sig.name}: 2 jobs finished, 2 pending" in summary
    (line,) = [ln for ln in err.splitlines() if "resume with:" in ln]
    resume_cmd = line.split("resume with: ", 1)[1]
    assert resume_cmd.endswith(f"--resume {out}")
    assert signal.getsignal(sig) is not None  # handlers restored (no exception escaped)

    before = {r.key: r.seconds for r in read_records(out)}
    assert run.main(shlex.split(resume_cmd)[3:]) == 0
    recs = read_records(out)
    assert [(r.method, r.seed) for r in recs] == [
        ("_test-grad", 0),
        ("_test-grad", 1),
        ("_test-slow", 0),
        ("_test-slow", 1),
    ]
    assert all(r.ok for r in recs)
    assert {r.key: r.seconds for r in recs if r.method == "_test-grad"} == before  # kept
    info = json.loads((out / RUN_INFO).read_text())
    assert info["status"] == "finished" and len(info["resumed"]) == 1


def test_sigterm_stops_a_pool_and_its_children(faulty, tmp_path, capsys):
    """--executor pool: the same contract (143, interrupted, resumable) and no job process left
    running once the runner returns."""
    import multiprocessing

    out = tmp_path / "pool"

    def send():
        _wait_for_records(out, 2)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    code = run.main([*ARGS, "--out", str(out), "--executor", "pool", "--workers", "2"])
    sender.join()
    assert code == 143
    assert json.loads((out / RUN_INFO).read_text())["status"] == "interrupted"
    t0 = time.monotonic()
    while multiprocessing.active_children() and time.monotonic() - t0 < 10:
        time.sleep(0.1)
    assert not multiprocessing.active_children()
    assert run.main([*ARGS, "--resume", str(out)]) == 0
    assert all(r.ok for r in read_records(out)) and len(read_records(out)) == 4


@pytest.mark.slow  # a fresh interpreter and forkserver: ~40 s on a loaded 2-core machine
def test_sigterm_to_the_runner_alone_stops_its_worker(tmp_path):
    """A signal to the main process only (not its group): the worker is killed too, no temp
    folders (``tmp*``, ``pymp-*``) are left, and the exit code is 143."""
    out, tmp = tmp_path / "run", tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "eval.run", *ARGS, "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: the signal goes to the runner alone
    )
    try:
        _wait_for_records(out, 2)
        time.sleep(0.5)
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert workers, "no worker process running"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "resume with:" in err
    time.sleep(0.5)
    alive = [p.pid for p in workers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"workers still running: {alive}"
    # torch's own caches (torchinductor_<user>) are meant to persist; ours must not
    assert [p.name for p in tmp.iterdir() if p.name.startswith(("tmp", "pymp-"))] == []
    assert json.loads((out / RUN_INFO).read_text())["status"] == "interrupted"
