"""A run folder keeps what each run found: scores (CSV and .pt) and the method's trace."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import pytest
import torch

from eval import run
from eval.formats.found import SCORES, TRACES, read_scores, read_trace, trace_dict, trace_summary
from eval.records import RECORDS, read_records, run_name
from patching import PatchableModel


@pytest.fixture(scope="module")
def found_run(tiny, tmp_path_factory):
    """ipd, eap and a failing method on the tiny task, inline, one seed."""
    out = tmp_path_factory.mktemp("found")
    argv = ["--plugin", "tests.eval.tiny", "--tasks", "_test-tiny", "--seeds", "1"]
    argv += ["--methods", "ipd,eap,_test-broken", "--inline", "--no-plots", "--out", str(out)]
    assert run.main(argv) == 1  # _test-broken failed
    return out, {r.method: r for r in read_records(out)}


def test_scores_and_traces_of_every_ok_run(tiny, found_run):
    out, recs = found_run
    ok = sorted(m for m, r in recs.items() if r.ok)
    assert ok == ["eap", "ipd"]
    stems = {run_name(m, "_test-tiny", 0) for m in ok}
    assert {p.name for p in (out / SCORES).iterdir()} == {
        f"{s}.{ext}" for s in stems for ext in ("csv", "pt")
    }
    assert {p.name for p in (out / TRACES).iterdir()} == {f"{s}.json" for s in stems}
    edges = PatchableModel(tiny.TinyTask().load_model()).graph.edge_names
    for method in ok:
        stem = run_name(method, "_test-tiny", 0)
        csv = pd.read_csv(out / SCORES / f"{stem}.csv")
        assert list(csv.columns) == ["edge", "score"] and csv.edge.tolist() == edges
        pt = torch.load(out / SCORES / f"{stem}.pt", weights_only=True)
        assert pt["edges"] == edges and pt["scores"].dtype == torch.float32
        torch.testing.assert_close(
            torch.tensor(csv.score.to_numpy(), dtype=torch.float32), pt["scores"]
        )
        assert read_scores(out, method, "_test-tiny", 0)[0] == edges


def test_trace_summary_filled_for_ipd_empty_for_eap(found_run):
    out, recs = found_run
    ipd, eap = recs["ipd"], recs["eap"]
    trace = read_trace(out, "ipd", "_test-tiny", 0)
    assert (ipd.steps, ipd.stopped_early) == (trace["steps"], trace["stopped_early"])
    assert ipd.final_loss == pytest.approx(trace["final_loss"], rel=1e-12)
    # measured (torch 2.13 CPU, 1 thread; ipd's default lam 0.01 since issue 13): the whole
    # 300-step budget, no plateau stop, final loss 0.00111 (the fully ablated model is ~1)
    assert ipd.steps == 300 and ipd.stopped_early is False
    assert ipd.final_loss == pytest.approx(0.0011, abs=0.0005)
    assert eap.steps is None and eap.stopped_early is None and math.isnan(eap.final_loss)
    assert read_trace(out, "eap", "_test-tiny", 0) == {}
    table = pd.read_csv(out / RECORDS).set_index("method")  # empty cells read as NaN
    assert table.loc["ipd", "steps"] == ipd.steps and math.isnan(table.loc["eap", "steps"])


def test_trace_summary_of_partial_traces():
    assert trace_summary({}) == (None, None, pytest.approx(math.nan, nan_ok=True))
    assert trace_summary({"steps": 7.0, "stopped_early": 1, "final_loss": 0.25}) == (7, True, 0.25)


@dataclass
class _DataclassTrace:
    steps: int = 3


def test_a_trace_must_be_a_dict():
    assert trace_dict({"steps": 1}) == {"steps": 1}
    for bad in ([1, 2], _DataclassTrace()):
        with pytest.raises(TypeError, match="must be a dict"):
            trace_dict(bad)
