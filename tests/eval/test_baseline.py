"""The regression check: passes on the baseline's own records, fails on real drops only."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from eval import baseline as B
from eval.records import Record, write_run


def _records(
    auc=(0.90, 0.91, 0.89),
    cpr=(0.80, 0.82, 0.81),
    seconds=(10.0, 11.0, 9.0),
    method="ipd",
    task="ioi",
    device="cpu",
):
    return [
        Record(method, task, "resample", s, n=16, auc=a, cpr=c, seconds=t, device=device)
        for s, (a, c, t) in enumerate(zip(auc, cpr, seconds, strict=True))
    ]


@pytest.fixture
def run():
    return _records() + _records(auc=(0.7, 0.7, 0.7), cpr=(0.5, 0.5, 0.5), method="eap")


@pytest.fixture
def base(run):
    return B.build_baseline(run, source="test")


def test_baseline_contents(base):
    assert base["schema"] == B.SCHEMA
    ipd = next(e for e in base["entries"] if e["method"] == "ipd")
    assert ipd["auc"] == pytest.approx(0.90) and ipd["seconds"] == pytest.approx(10.0)
    # the 95% t half-width of (0.90, 0.91, 0.89): 4.302653 * 0.01 / sqrt(3) = 0.024841
    assert ipd["auc_tol"] == pytest.approx(0.024841, abs=1e-6)
    assert ipd["cpr_tol"] == pytest.approx(0.05)
    assert ipd["n"] == 16 and ipd["device"] == "cpu" and ipd["n_seeds"] == 3


def test_tolerance_grows_with_seed_spread():
    noisy = B.build_baseline(_records(auc=(0.7, 0.9, 0.8)))
    assert noisy["entries"][0]["auc_tol"] == pytest.approx(4.302653 * 0.1 / 3**0.5, abs=1e-6)


def test_replica_with_other_floats_passes_and_a_real_regression_fails(run, base):
    """Another machine's replica: every value moved by float noise (1e-6 relative, seeded) and
    its own seeds' spread; it passes. A real regression (AUC down 0.1 on every seed) fails."""
    import numpy as np

    rng = np.random.default_rng(0)
    replica = [
        replace(r, auc=r.auc * (1 + 1e-6 * rng.standard_normal()), cpr=r.cpr * (1 - 1e-6))
        for r in run
    ]
    assert B.check(replica, base)[0] == []
    spread = [replace(r, auc=r.auc + (-0.03, 0.0, 0.03)[r.seed]) for r in run]  # mean kept
    assert B.check(spread, base)[0] == []
    worse = [replace(r, auc=r.auc - 0.1) for r in run]
    fails = B.check(worse, base)[0]
    assert len(fails) == 2 and all("more than the two intervals allow" in f for f in fails)


def test_check_passes_on_its_own_run_and_small_noise(run, base):
    assert B.check(run, base) == ([], [])
    wobble = [replace(r, auc=r.auc - 0.015, seconds=r.seconds * 1.9) for r in run]
    assert B.check(wobble, base)[0] == []


def test_check_names_each_regression(run, base):
    bad = [replace(r, auc=r.auc - 0.1) if r.method == "ipd" else r for r in run]
    bad = [replace(r, cpr=0.3) if r.method == "eap" else r for r in bad]
    fails, _ = B.check(bad, base)
    assert len(fails) == 2
    assert any(f.startswith("ipd on ioi (resample): AUC") for f in fails)
    assert any(f.startswith("eap on ioi (resample): CPR") for f in fails)


def test_check_wall_time(run, base):
    slow = [replace(r, seconds=r.seconds * 2.5) if r.method == "eap" else r for r in run]
    fails, _ = B.check(slow, base)
    assert fails == ["eap on ioi (resample): wall time 25.00s grew more than 2x baseline 10.00s"]
    # a tiny task's millisecond noise is not a regression
    tiny_base = B.build_baseline(_records(seconds=(0.01, 0.01, 0.01)))
    assert B.check(_records(seconds=(0.05, 0.05, 0.05)), tiny_base)[0] == []
    # time is compared on the same device only
    fails, notes = B.check([replace(r, device="cuda", seconds=99.0) for r in run], base)
    assert fails == [] and any("time not compared" in n for n in notes)


def test_check_failed_runs_nan_and_subsets(run, base):
    errored = [replace(r, status="error: boom") if r.method == "ipd" else r for r in run]
    fails, _ = B.check(errored, base)
    assert fails == ["ipd on ioi (resample): no successful run (error: boom)"]
    nan = [replace(r, auc=float("nan")) if r.method == "ipd" else r for r in run]
    assert len(B.check(nan, base)[0]) == 1
    # a subset run (only eap) checks only eap; another n is noted, not compared
    assert B.check([r for r in run if r.method == "eap"], base) == ([], [])
    fails, notes = B.check([replace(r, n=8) for r in run], base)
    assert fails == [] and len(notes) == 2


def test_load_validates_schema(tmp_path, base):
    good = tmp_path / "b.json"
    B.write_baseline(good, base)
    assert B.load_baseline(good)["entries"] == json.loads(good.read_text())["entries"]
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "circuitbench-baseline/0", "entries": []}))
    with pytest.raises(B.BaselineError, match="schema 'circuitbench-baseline/0'.*rebuild"):
        B.load_baseline(other)
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(B.BaselineError, match="schema None"):
        B.load_baseline(tmp_path / "list.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(B.BaselineError, match="not valid JSON"):
        B.load_baseline(tmp_path / "bad.json")
    with pytest.raises(B.BaselineError, match="can't read"):
        B.load_baseline(tmp_path / "missing.json")


def test_baseline_cli(tmp_path, run, capsys):
    write_run(tmp_path, run, [])
    out = tmp_path / "sub" / "baseline.json"
    assert B.main([str(tmp_path), "--out", str(out), "--auc-tol", "0.03"]) == 0
    data = B.load_baseline(out)
    assert len(data["entries"]) == 2 and data["entries"][0]["auc_tol"] == pytest.approx(0.03)
    assert B.main([str(tmp_path / "nowhere")]) == 2
    assert "no records.csv" in capsys.readouterr().err
