"""MIB circuit files (eval.mib): names both ways, GPT-2 small's 32,491 edges from its shape,
the per-run export and the import round trip that reproduces a run's own numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval import mib, run
from eval.records import read_records, run_name
from patching.graph import EdgeGraph


def test_names_both_ways():
    assert mib.to_mib_edge("embed->a3.h0.v") == "input->a3.h0<v>"
    assert mib.to_mib_edge("a2.h1->m5") == "a2.h1->m5"
    assert mib.to_mib_edge("m11->logits") == "m11->logits"
    assert mib.from_mib_edge("input->a3.h0<v>") == "embed->a3.h0.v"
    assert mib.from_mib_edge("a2.h1->a4.h3<k>") == "a2.h1->a4.h3.k"
    for bad in ("input", "input->a3.h0<x>", "x9->m1"):
        with pytest.raises(mib.MibFormatError):
            mib.from_mib_edge(bad)
    with pytest.raises(mib.MibFormatError, match="no positions"):
        mib.to_mib_edge("embed->m0@2")


def test_gpt2_small_shape_gives_32491_edges_both_ways(tmp_path):
    g = EdgeGraph(n_layers=12, n_heads=12, has_mlp=True, parallel=False)
    scores = np.random.default_rng(0).normal(size=g.n_edges)
    keep = set(g.edge_names[:7])
    path = mib.write_mib(tmp_path / "gpt2.json", g, 768, scores, keep)
    d = json.loads(path.read_text())
    assert d["cfg"] == {"n_layers": 12, "n_heads": 12, "parallel_attn_mlp": False, "d_model": 768}
    assert len(d["edges"]) == 32491 and len(d["nodes"]) == 1 + 144 + 12 + 1
    assert "input->a3.h0<v>" in d["edges"] and "m11->logits" in d["edges"]
    edges = mib.read_mib_edges(path)
    assert len(edges) == 32491 and set(edges) == set(g.edge_names)
    assert set(mib.read_mib_edges(path, in_graph_only=True)) == keep
    np.testing.assert_array_equal(mib.mib_scores(d, g), scores)
    # without scores, a file is its in_graph circuit
    for v in d["edges"].values():
        v["score"] = None
    assert mib.mib_scores(d, g).sum() == 7


def test_a_file_of_another_shape_is_refused():
    small = EdgeGraph(n_layers=2, n_heads=2, has_mlp=True, parallel=False)
    other = EdgeGraph(n_layers=3, n_heads=2, has_mlp=True, parallel=False)
    d = mib.mib_dict(small, 8, np.zeros(small.n_edges))
    with pytest.raises(mib.MibFormatError, match="do not match"):
        mib.mib_scores(d, other)


def test_run_exports_and_import_reproduces_its_numbers(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--plugin", "tests.eval.tiny", "--tasks", "_test-tiny", "--seeds", "1"]
    argv += ["--methods", "eap,eap-ig", "--inline", "--no-plots", "--out", str(out)]
    assert run.main(argv) == 0
    recs = {r.method: r for r in read_records(out)}
    assert np.isnan(recs["eap"].completeness_gap)
    assert 0 <= recs["eap-ig"].completeness_gap < 0.05
    for method, rec in recs.items():
        path = out / mib.MIB / f"{run_name(method, '_test-tiny', 0)}.json"
        assert path.is_file()
        assert len(mib.read_mib_edges(path)) == rec.n_edges
        ev = mib.evaluate_file(path, "_test-tiny", signed=rec.signed)
        for key in ("auc", "ap", "precision_at_k", "cpr", "cmd"):
            assert getattr(ev, key) == pytest.approx(getattr(rec, key), abs=1e-6), (method, key)
    capsys.readouterr()
    path = out / mib.MIB / f"{run_name('eap', '_test-tiny', 0)}.json"
    assert mib.main(["import", str(path), "--task", "_test-tiny"]) == 0
    text = capsys.readouterr().out
    printed = json.loads(text[text.index("{") :])  # TransformerLens may print a line first
    assert printed["cpr"] == pytest.approx(recs["eap"].cpr, abs=1e-6)


def test_import_refuses_bad_input_before_work(tiny, tmp_path, capsys):
    assert mib.main(["import", str(tmp_path / "none.json"), "--task", "_test-tiny"]) == 2
    assert "no MIB file" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cfg": {}}))
    assert mib.main(["import", str(bad), "--task", "_test-tiny"]) == 2
    assert "no 'edges'" in capsys.readouterr().err
    assert mib.main(["import", str(bad), "--task", "nope"]) == 2
    assert "unknown task" in capsys.readouterr().err
