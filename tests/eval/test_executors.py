"""Executors: local, inline and Ray give the same records except the cost columns; a killed
worker's job is retried; --timeout under Ray. The Ray tests run a real local Ray instance
(one per module, shared); the slow test starts a head and a worker node with ``ray start``."""

from __future__ import annotations

import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from eval import run
from eval.executors import EXECUTORS
from eval.records import read_records

ROOT = Path(__file__).resolve().parents[2]
BASE = [
    "--plugin",
    "tests.eval.tiny",
    "--plugin",
    "tests.eval.faulty",
    "--no-plots",
    "--tasks",
    "_test-tiny",
]
COST = {"seconds", "eval_seconds", "peak_mb", "start_mb", "memory"}


@pytest.fixture(scope="module")
def faulty(tiny):
    import importlib

    yield importlib.import_module("tests.eval.faulty")
    sys.modules.pop("tests.eval.faulty", None)


@pytest.fixture(scope="module")
def ray_cluster(faulty):
    """A local Ray instance for this module (the runner joins it instead of starting its own)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def flaky_marker(faulty):
    faulty.FLAKY_MARKER.unlink(missing_ok=True)
    yield faulty.FLAKY_MARKER
    faulty.FLAKY_MARKER.unlink(missing_ok=True)


def _comparable(out: Path) -> list[dict]:
    """Records without their cost columns, NaN as None (so equal NaNs compare equal)."""
    rows = []
    for r in read_records(out):
        d = {k: v for k, v in asdict(r).items() if k not in COST}
        rows.append(
            {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in d.items()}
        )
    return rows


def test_registry_lists_the_executors():
    assert {"local", "pool", "inline", "ray"} <= set(EXECUTORS.keys())


JOBS = ["--methods", "_test-grad,_test-random,_test-broken", "--seeds", "2"]


@pytest.fixture(scope="module")
def local_run(faulty, tmp_path_factory):
    """A local-executor run of JOBS, the reference of the other executors."""
    out = tmp_path_factory.mktemp("local") / "run"
    assert run.main([*BASE, *JOBS, "--out", str(out)]) == 1  # _test-broken fails
    return out


def test_inline_equals_local(local_run, tmp_path):
    assert run.main([*BASE, *JOBS, "--out", str(tmp_path / "inline"), "--inline"]) == 1
    assert _comparable(tmp_path / "inline") == _comparable(local_run)


def test_pool_equals_local(local_run, tmp_path):
    """Two jobs at a time: the same records in the plan's order (cost columns aside)."""
    out = tmp_path / "pool"
    assert run.main([*BASE, *JOBS, "--out", str(out), "--executor", "pool", "--workers", "2"]) == 1
    assert _comparable(out) == _comparable(local_run)


def test_workers_is_checked(tmp_path, capsys):
    assert run.main([*BASE, *JOBS, "--out", str(tmp_path / "a"), "--workers", "2"]) == 2
    assert "--workers is for --executor pool" in capsys.readouterr().err
    argv = [*BASE, *JOBS, "--out", str(tmp_path / "b"), "--executor", "pool", "--workers", "0"]
    assert run.main(argv) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_local_retries_a_killed_worker(faulty, tmp_path, flaky_marker):
    argv = [*BASE, "--methods", "_test-flaky", "--seeds", "1"]
    assert run.main([*argv, "--out", str(tmp_path / "a"), "--retries", "0"]) == 1
    (rec,) = read_records(tmp_path / "a")
    assert rec.status.startswith("error: worker killed by SIGKILL")
    assert run.main([*argv, "--out", str(tmp_path / "b")]) == 0  # marker exists: succeeds
    flaky_marker.unlink()
    assert run.main([*argv, "--out", str(tmp_path / "c"), "--retries", "1"]) == 0
    (rec,) = read_records(tmp_path / "c")
    assert rec.ok


def test_ray_records_equal_local(ray_cluster, local_run, tmp_path):
    assert run.main([*BASE, *JOBS, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 1
    assert _comparable(tmp_path / "ray") == _comparable(local_run)
    for name in ("scores", "traces", "logs", "mib", "circuits"):
        assert sorted(p.name for p in (tmp_path / "ray" / name).iterdir()) == sorted(
            p.name for p in (local_run / name).iterdir()
        ), name
    for name in ("mib", "circuits"):  # built from what the Ray worker sent back: the same files
        for p in (local_run / name).iterdir():
            assert (tmp_path / "ray" / name / p.name).read_text() == p.read_text(), p.name
    assert ray_cluster.is_initialized()  # the runner joined the instance, and left it running


def test_ray_retries_a_killed_worker(ray_cluster, tmp_path, flaky_marker):
    argv = [*BASE, "--methods", "_test-flaky", "--seeds", "1", "--executor", "ray"]
    assert run.main([*argv, "--out", str(tmp_path / "a"), "--retries", "1"]) == 0
    assert flaky_marker.exists()  # the first attempt ran and was killed
    (rec,) = read_records(tmp_path / "a")
    assert rec.ok
    flaky_marker.unlink()
    assert run.main([*argv, "--out", str(tmp_path / "b"), "--retries", "0"]) == 1
    (rec,) = read_records(tmp_path / "b")  # recorded as failed, never lost
    assert rec.status.startswith("error: Ray worker lost") and "after 1 attempt(s)" in rec.status


def test_ray_timeout(ray_cluster, tmp_path):
    out = tmp_path / "a"
    argv = [*BASE, "--methods", "_test-hang", "--seeds", "1", "--executor", "ray", "--timeout", "3"]
    t0 = time.monotonic()
    assert run.main([*argv, "--out", str(out)]) == 1
    assert time.monotonic() - t0 < 60
    (rec,) = read_records(out)
    assert rec.status == "timeout: no result within 3 s (--timeout)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ray_start_head_and_worker_via_address(faulty, tmp_path):
    """A head and a worker node started as separate processes (``ray start --block``, stopped
    by their pids), and a run through ``--address``."""
    pytest.importorskip("ray")
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    # Ray 2.60 authenticates nodes and drivers of a `ray start` cluster with a shared token
    token = secrets.token_hex(32)
    # a short RAY_TMPDIR: Ray's unix sockets live under it (paths over 107 bytes fail, and with
    # a pytest tmp_path the nodes hang)
    raytmp = tempfile.mkdtemp(prefix="cbray")
    env = {
        **os.environ,
        "RAY_TMPDIR": raytmp,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
    }
    common = ["--block", "--disable-usage-stats", "--num-cpus", "1", "--node-ip-address=127.0.0.1"]
    head = subprocess.Popen(
        [ray_bin, "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
        env=env,
        cwd=ROOT,
    )
    nodes = [head]
    try:
        time.sleep(15)
        nodes.append(
            subprocess.Popen(
                [ray_bin, "start", f"--address=127.0.0.1:{port}", *common], env=env, cwd=ROOT
            )
        )
        time.sleep(15)
        out = tmp_path / "run"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "eval.run",
                *BASE,
                "--methods",
                "_test-grad,_test-random",
                "--seeds",
                "2",
                "--executor",
                "ray",
                "--address",
                f"127.0.0.1:{port}",
                "--out",
                str(out),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert all(r.ok for r in read_records(out)) and len(read_records(out)) == 4
    finally:
        for p in reversed(nodes):
            p.terminate()
        for p in nodes:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(raytmp, ignore_errors=True)


def test_ray_interrupt_cancels_and_marks_the_run(ray_cluster, tmp_path):
    """SIGINT during a Ray run: the hung task is cancelled (the run returns at once, not when
    the job would end), run.json is marked interrupted, exit 130."""
    import json
    import signal
    import threading

    out = tmp_path / "a"
    argv = [*BASE, "--methods", "_test-grad,_test-hang", "--seeds", "1", "--executor", "ray"]

    late = []

    def send():
        # interrupt once the first job's record is written; if it never is within 240 s (a
        # starved machine), interrupt anyway so the run returns and the test fails, not hangs
        # (an assert here would only end this thread, and _test-hang sleeps an hour)
        t0 = time.monotonic()
        while (
            not (out / "records.csv").is_file()
            or len((out / "records.csv").read_text().splitlines()) < 2
        ):
            if time.monotonic() - t0 > 240:
                late.append(True)
                break
            time.sleep(0.05)
        time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    t0 = time.monotonic()
    assert run.main([*argv, "--out", str(out)]) == 130
    assert not late, "the first job's record was not written within 240 s"
    assert time.monotonic() - t0 < 300  # _test-hang sleeps an hour
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert (info["finished_jobs"], info["pending_jobs"]) == (1, 1)
    assert [r.method for r in read_records(out)] == ["_test-grad"]
