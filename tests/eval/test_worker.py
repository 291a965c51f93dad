"""One job's path: problem -> method -> evaluate -> record; the signal check runs once and
honours the method's ``needs_signal``."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest

from eval.records import Record
from eval.scoring.evaluate import Evaluation
from eval.worker import Job, run_and_save, run_job
from patching.graph import GraphOptions
from tasks.problem import NoSignalError, Problem, UnsupportedGraphError, build_problem


def test_signal_check_runs_once(tiny_job, monkeypatch):
    calls = []
    check = Problem.check_signal

    def counted(self):
        calls.append(self)
        return check(self)

    monkeypatch.setattr(Problem, "check_signal", counted)
    outcome = run_job(tiny_job("_test-grad"), isolated=False)
    assert outcome.record.status == "ok"
    assert len(calls) == 1


def test_random_runs_on_a_task_without_signal(tiny_job):
    """Deliberate: ``random`` declares needs_signal = False, so it runs where others refuse;
    its edge recovery is scored and its faithfulness, undefined there, is NaN."""
    rand = run_job(tiny_job("random", "_test-flat"), isolated=False)
    assert rand.record.status == "ok" and rand.scores.shape == (61,)
    assert 0 <= rand.record.auc <= 1 and rand.record.n_true_edges == 3
    assert math.isnan(rand.record.cpr) and all(math.isnan(f) for f in rand.curves.faithfulness)
    grad = run_job(tiny_job("_test-grad", "_test-flat"), isolated=False)
    assert grad.record.status.startswith("error: NoSignalError: the task metric is the same")
    assert grad.scores is None


def test_build_problem_refuses_a_graph_without_ground_truth(tiny):
    task = tiny.TinyTask()
    with pytest.raises(UnsupportedGraphError, match="no per-position ground truth"):
        build_problem(task, GraphOptions(per_position=True), n=2, seed=0, ablation="resample")
    problem = build_problem(task, GraphOptions(), n=2, seed=0, ablation="zero")
    assert problem.n_edges == 61 and problem.data.n == 2 and problem.has_signal
    with pytest.raises(NoSignalError, match="no signal"):
        build_problem(tiny.FlatTask(), GraphOptions(), 2, 0, "resample").check_signal()


def test_unsupported_graph_is_a_skip_in_the_task_s_words(tiny_job):
    rec = run_job(tiny_job("eap-pos"), isolated=False).record
    assert rec.status == (
        "skipped: ValueError: task '_test-tiny' defines no per-position ground truth; "
        "use positions=None"
    )


def test_every_evaluation_scalar_reaches_the_record():
    scalars = {f.name for f in fields(Evaluation) if f.type == "float"}
    assert scalars and scalars <= {f.name for f in fields(Record)}


def test_job_round_trips_and_a_failed_method_saves_nothing(tiny_job, tmp_path):
    job = tiny_job("_test-broken")
    assert Job.from_json(job.to_json()) == job
    record, curves = run_and_save(job, tmp_path, isolated=False)
    assert record.status == "error: RuntimeError: deliberately broken"
    assert curves.faithfulness == [] and list(tmp_path.iterdir()) == []
