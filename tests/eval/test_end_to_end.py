"""The runner end to end on the test-only tiny task and methods (tests/eval/tiny.py)."""

from __future__ import annotations

import json

import pytest

from eval import run
from eval.baseline import load_baseline
from eval.records import read_curves, read_records, run_name
from eval.scoring import metrics

TINY = ["--plugin", "tests.eval.tiny", "--tasks", "_test-tiny"]


def test_isolated_run(tiny, tmp_path, capsys):
    """Each run in its own process: results, a failing and a crashing method, a skipped task."""
    out, baseline = tmp_path / "run", tmp_path / "baseline.json"
    argv = [
        "--plugin",
        "tests.eval.tiny",
        "--tasks",
        "_test-tiny,_test-unavailable",
        "--methods",
        "_test-grad,_test-random,_test-broken,_test-crash",
        "--seeds",
        "1",
        "--out",
        str(out),
        "--write-baseline",
        str(baseline),
    ]
    assert run.main(argv) == 1  # two methods failed; the run went on
    err = capsys.readouterr().err
    assert "skip task _test-unavailable: needs hardware this machine lacks" in err

    recs = {(r.method, r.task): r for r in read_records(out)}
    assert len(recs) == 8
    grad = recs["_test-grad", "_test-tiny"]
    assert grad.status == "ok" and (grad.n, grad.n_edges, grad.n_true_edges) == (6, 61, 6)
    # the ground truth is the top 10% by the same gradient on seed 0: recovered exactly
    assert grad.auc == 1.0 and grad.ap == 1.0 and grad.precision_at_k == 1.0
    assert 0 < grad.cpr < 1 and grad.n_heldout == 6  # scored on 6 held-out examples
    assert 0 < grad.cpr_log < grad.cpr  # the small circuits, weighed more on a log axis, lose more
    assert grad.memory == "cpu-rss-process" and grad.seconds > 0
    assert grad.start_mb > 50 and grad.peak_mb > grad.start_mb - 2  # ru_maxrss vs rss: ~pages apart
    assert grad.steps is None and grad.final_loss != grad.final_loss  # no trace: empty summary
    assert 0 <= recs["_test-random", "_test-tiny"].auc <= 1
    assert recs["_test-broken", "_test-tiny"].status == "error: RuntimeError: deliberately broken"
    crash = recs["_test-crash", "_test-tiny"].status
    assert crash.startswith("error: worker exited with code 3 without a result")
    skipped = [r for (m, t), r in recs.items() if t == "_test-unavailable"]
    assert len(skipped) == 4
    assert all(r.status.startswith("skipped: needs hardware") for r in skipped)

    curves = {c.method: c for c in read_curves(out)}
    assert sorted(curves) == ["_test-grad", "_test-random"]  # curves of successful runs only
    assert curves["_test-grad"].faithfulness[-1] == pytest.approx(1.0, abs=1e-5)
    c = curves["_test-grad"]
    assert c.n_kept == [0, 0, 0, 0, 1, 3, 6, 12, 30, 61]  # floor(fraction * 61), as MIB
    assert grad.cmd == pytest.approx(metrics.cmd(c.fractions, c.faithfulness_abs), abs=1e-9)
    assert grad.overshoot == pytest.approx(metrics.overshoot(c.fractions, c.faithfulness), abs=1e-9)
    assert all(g <= k for g, k in zip(c.n_in_graph, c.n_kept, strict=True))
    assert 2 <= len(curves["_test-grad"].fpr) <= 200

    summary = (out / "summary.md").read_text()
    assert "| _test-grad | 1.000 | — |" in summary and "cpu_count" in summary
    assert "Command: `python -m eval.run --plugin tests.eval.tiny" in summary
    assert "deliberately broken" in summary
    plots = {p.name for p in (out / "plots").iterdir()}
    assert {"roc__test-tiny.png", "faithfulness__test-tiny.png", "auc_heatmap.png"} <= plots
    assert (out / "logs" / "_test-crash___test-tiny__seed0.log").exists()
    # the isolated children kept what the successful runs found, and only those
    kept = {run_name(m, "_test-tiny", 0) for m in ("_test-grad", "_test-random")}
    assert {p.name for p in (out / "scores").iterdir()} == {
        f"{k}.{ext}" for k in kept for ext in ("csv", "pt")
    }
    assert {p.name for p in (out / "traces").iterdir()} == {f"{k}.json" for k in kept}
    entries = load_baseline(baseline)["entries"]
    assert sorted(e["method"] for e in entries) == ["_test-grad", "_test-random"]


def test_check_against_a_baseline(tiny, tmp_path, capsys):
    """--write-baseline then --check: passes on the same run, fails naming each regression
    (that every failing (method, task) is named is tested on constructed records in
    test_baseline.py)."""
    common = [*TINY, "--methods", "_test-random", "--seeds", "1", "--inline", "--no-plots"]
    baseline = tmp_path / "baseline.json"
    assert run.main([*common, "--out", str(tmp_path / "a"), "--write-baseline", str(baseline)]) == 0
    assert run.main([*common, "--out", str(tmp_path / "b"), "--check", str(baseline)]) == 0
    assert "regression check: 0 regression(s)" in capsys.readouterr().out

    data = json.loads(baseline.read_text())
    (entry,) = data["entries"]
    entry["auc"] += 0.3  # pretend the method used to be much better
    entry["cpr"] += 0.3
    baseline.write_text(json.dumps(data))
    assert run.main([*common, "--out", str(tmp_path / "c"), "--check", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION: _test-random on _test-tiny (resample): AUC" in out
    assert "REGRESSION: _test-random on _test-tiny (resample): CPR" in out
    assert "regression check: 2 regression(s)" in out
    # the inline records say their CPU peak could not be attributed
    rec = read_records(tmp_path / "c")[0]
    assert rec.memory == "cpu-rss-shared" and rec.peak_mb != rec.peak_mb  # NaN


def test_ablation_without_ground_truth_is_skipped(tiny, tmp_path, capsys):
    argv = [
        *TINY,
        "--methods",
        "_test-grad",
        "--seeds",
        "2",
        "--ablation",
        "mean",
        "--out",
        str(tmp_path),
        "--no-plots",
    ]
    assert run.main(argv) == 1  # nothing ran (D12): exit 1 with the reasons
    assert "nothing ran; every job was skipped" in capsys.readouterr().err
    recs = read_records(tmp_path)
    assert len(recs) == 2
    assert all(
        r.status == "skipped: no ground truth under mean ablation (has: resample, zero)"
        for r in recs
    )
