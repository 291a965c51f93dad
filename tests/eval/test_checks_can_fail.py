"""Issue 20, checks that can't fail: --check against a baseline that matches no run of the
command is refused; the check says how many entries it compared (none: exit 1); a baseline of 0
entries is never written; a method named twice runs once."""

from __future__ import annotations

import json

import pytest

from eval import baseline as B
from eval import run
from eval.records import Record, read_records, write_run

TINY = ["--plugin", "tests.eval.tiny", "--tasks", "_test-tiny", "--device", "cpu"]
COMMON = [*TINY, "--methods", "_test-random", "--seeds", "1", "--inline", "--no-plots"]


@pytest.fixture
def baseline(tiny, tmp_path):
    path = tmp_path / "baseline.json"
    assert run.main([*COMMON, "--out", str(tmp_path / "a"), "--write-baseline", str(path)]) == 0
    return path


def _edit(path, **change):
    data = json.loads(path.read_text())
    if change.pop("empty", False):
        data["entries"] = []
    for e in data["entries"]:
        e.update(change)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "change", [{"empty": True}, {"task": "ioi"}, {"n": 3}, {"ablation": "mean"}]
)
def test_check_against_a_baseline_of_nothing_comparable_exits_2(baseline, tmp_path, capsys, change):
    _edit(baseline, **change)
    out = tmp_path / "b"
    assert run.main([*COMMON, "--out", str(out), "--check", str(baseline)]) == 2
    err = capsys.readouterr().err
    assert "no baseline entry matches a run of this command" in err
    assert not (out / "records.csv").exists()


def test_check_says_how_many_entries_it_compared(baseline, tmp_path, capsys):
    assert run.main([*COMMON, "--out", str(tmp_path / "b"), "--check", str(baseline)]) == 0
    assert "regression check: 0 regression(s) in 1 of 1 baseline entries" in capsys.readouterr().out


def test_compared_entries_counts_only_attempted_runs_of_the_same_n():
    recs = [Record("m", "t", "resample", 0, n=16), Record("m", "u", "resample", 0, n=8)]
    base = B.build_baseline(recs)
    assert B.compared_entries(recs, base) == 2
    assert B.compared_entries(recs[:1], base) == 1
    other_n = [Record("m", "t", "resample", 0, n=4)]
    assert B.compared_entries(other_n, base) == 0
    skipped = [Record("m", "t", "resample", 0, status="skipped: no model")]
    assert B.compared_entries(skipped, base) == 0


def test_baseline_of_a_run_where_every_job_failed_is_refused(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    write_run(folder, [Record("m", "t", "resample", 0, status="error: boom")], [])
    out = tmp_path / "baseline.json"
    assert B.main([str(folder), "--out", str(out)]) == 2
    assert "a baseline of 0 entries" in capsys.readouterr().err
    assert not out.exists()


def test_a_method_named_twice_runs_once(tiny, tmp_path):
    out = tmp_path / "run"
    argv = [*TINY, "--methods", "_test-random,_test-random", "--seeds", "1", "--inline"]
    assert run.main([*argv, "--no-plots", "--out", str(out)]) == 0
    assert [r.method for r in read_records(out)] == ["_test-random"]
