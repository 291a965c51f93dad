"""The committed results stay in step with the code: the baseline loads under the current
schema and names only registered methods and tasks, and every offline (method, task) pair that
ran ok in the committed run has a baseline entry."""

from __future__ import annotations

from pathlib import Path

from eval.baseline import load_baseline
from eval.records import read_records
from methods import METHODS
from tasks import TASKS

ROOT = Path(__file__).resolve().parents[2] / "results"


def test_baseline_loads_and_names_registered_keys():
    base = load_baseline(ROOT / "baseline.json")
    assert base["entries"]
    for e in base["entries"]:
        assert e["method"] in METHODS, e["method"]
        assert e["task"] in TASKS, e["task"]
        assert 0.0 <= e["auc"] <= 1.0


def test_every_ok_run_of_the_committed_results_is_in_the_baseline():
    base = load_baseline(ROOT / "baseline.json")
    entries = {(e["method"], e["task"]) for e in base["entries"]}
    ok = {(r.method, r.task) for r in read_records(ROOT / "default") if r.ok}
    assert ok and ok == entries
