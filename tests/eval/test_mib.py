"""MIB / EAP-IG circuit files (eval.formats.mib; names: tests/patching/test_mib_names.py): GPT-2
small's 32,491 edges, the schema of files the real tools wrote (../shared/fixtures/mib, written
outside this project), pruning as EAP-IG prunes, offline recovery of MIB's published IOI file,
circuit-only files, every bad file as exit 2 naming the file, the per-run export and its import
round trip, MIB's folder layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eval import run
from eval.formats import mib
from eval.formats.found import read_scores
from eval.records import read_records, run_name
from eval.scoring import metrics
from patching.graph import EdgeGraph

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "mib"
IOI_FILE = "mib_ioi_gpt2_eap-ig.json"
TOPN_FILE = "eapig_tracr-reverse_scores_topn.json"
CIRCUIT_FILE = "eapig_tracr-reverse_circuit_only.json"


def fixture(name: str) -> Path:
    """A file of ../shared/fixtures/mib (beside the repository); fails, never skips, without it."""
    path = FIXTURES / name
    assert path.is_file(), (
        f"missing fixture {path}: the MIB/EAP-IG files written by the real tools live in "
        "../shared/fixtures/mib relative to the repository root (copy shared/ beside the clone)"
    )
    return path


def schema(d: dict) -> dict:
    """Every key and value type EAP-IG's ``Graph.from_json`` indexes, as a comparable dict."""
    def kinds(values):
        return sorted({tuple(sorted((k, type(v).__name__) for k, v in x.items())) for x in values})

    return {
        "top": sorted(d),
        "cfg": sorted((k, type(v).__name__) for k, v in d["cfg"].items()),
        "nodes": kinds(d["nodes"].values()),
        "edges": kinds(d["edges"].values()),
    }


TRACR = EdgeGraph(n_layers=4, n_heads=1, has_mlp=True)  # tracr-reverse's shape, d_model 41


def test_gpt2_small_shape_gives_32491_edges_both_ways(tmp_path):
    g = EdgeGraph(n_layers=12, n_heads=12, has_mlp=True, parallel=False)
    scores = np.random.default_rng(0).normal(size=g.n_edges)
    keep = {"embed->a0.h1.v", "a0.h1->m0", "m0->logits"}  # connected: nothing to prune
    path = mib.write_mib(tmp_path / "gpt2.json", g, 768, scores, keep)
    d = json.loads(path.read_text())
    assert d["cfg"] == {"n_layers": 12, "n_heads": 12, "parallel_attn_mlp": False, "d_model": 768}
    assert len(d["edges"]) == 32491 and len(d["nodes"]) == 1 + 144 + 12 + 1
    assert "input->a3.h0<v>" in d["edges"] and "m11->logits" in d["edges"]
    marked = {n for n, v in d["nodes"].items() if v["in_graph"]}
    assert marked == {"input", "a0.h1", "m0", "logits"}
    edges = mib.read_mib_edges(path)
    assert len(edges) == 32491 and set(edges) == set(g.edge_names)
    assert set(mib.read_mib_edges(path, in_graph_only=True)) == keep
    np.testing.assert_array_equal(mib.mib_scores(d, g), scores)
    np.testing.assert_array_equal(mib.read_mib(path).scores, scores)


def test_dangling_marks_are_pruned_and_nan_scores_refused(tmp_path):
    scores = np.arange(TRACR.n_edges, dtype=float)
    d = mib.mib_dict(TRACR, 41, scores, {"embed->a0.h0.q", "m3->logits"})  # both dangle
    assert not any(v["in_graph"] for v in d["edges"].values())
    assert [n for n, v in d["nodes"].items() if v["in_graph"]] == ["logits"]  # as LogitNode
    scores[3] = np.nan
    with pytest.raises(mib.NonFiniteScoresError, match="1 of 77 scores"):
        mib.write_mib(tmp_path / "nan.json", TRACR, 41, scores)
    assert not (tmp_path / "nan.json").exists()


def test_written_files_have_the_schema_of_eapig_files(tmp_path):
    ours = mib.mib_dict(TRACR, 41, np.linspace(-1, 1, TRACR.n_edges), {"m0->logits"})
    for name in (TOPN_FILE, CIRCUIT_FILE, IOI_FILE):
        theirs = json.loads(fixture(name).read_text())
        assert schema(ours) == schema(theirs), name
    theirs = json.loads(fixture(TOPN_FILE).read_text())
    assert ours["cfg"] == theirs["cfg"]
    assert list(ours["nodes"]) == list(theirs["nodes"])  # EAP-IG's node order
    assert set(ours["edges"]) == set(theirs["edges"])  # and edge names


def test_marking_prunes_as_eapig_apply_topn():
    """The fixture was marked by EAP-IG's ``apply_topn(10)`` (absolute, pruned): 9 edges."""
    theirs = json.loads(fixture(TOPN_FILE).read_text())
    f = mib.read_mib(fixture(TOPN_FILE))
    top = np.zeros(TRACR.n_edges, dtype=bool)
    top[metrics.ranking(f.scores)[:10]] = True
    ours = mib.mib_dict(TRACR, 41, f.scores, top)
    assert ours["edges"] == theirs["edges"]
    assert ours["nodes"] == theirs["nodes"]
    assert int(f.in_graph.sum()) == 9 and not f.circuit_only


def test_mib_published_ioi_file_scores_offline():
    f = mib.read_mib(fixture(IOI_FILE))
    assert f.graph.n_edges == 32491 and int(f.in_graph.sum()) == 756 and not f.circuit_only
    out = mib.recovery_only(f, "ioi")
    assert out["auc"] == pytest.approx(0.8705, abs=5e-4)
    assert out["ap"] == pytest.approx(0.2245, abs=5e-4)
    assert mib.recovery_only(f, "ioi", signed=True)["auc"] == pytest.approx(0.5334, abs=5e-4)


def test_import_cli_without_the_model_prints_recovery(monkeypatch, capsys):
    from tasks.ioi import IOITask

    monkeypatch.setattr(IOITask, "unavailable_reason", lambda self: "no weights here (test)")
    assert mib.main(["import", str(fixture(IOI_FILE)), "--task", "ioi"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["auc"] == pytest.approx(0.8705, abs=5e-4)
    assert out["cpr"] is None and out["cmd"] is None  # standard JSON: null, not NaN
    assert "no weights here" in out["note"]


def test_import_falls_back_when_loading_the_model_fails(monkeypatch):
    from tasks.ioi import IOITask

    def broken(*a, **k):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(IOITask, "unavailable_reason", lambda self: None)
    monkeypatch.setattr(mib, "evaluate_file", broken)
    out = mib.import_file(fixture(IOI_FILE), "ioi")
    assert out["auc"] == pytest.approx(0.8705, abs=5e-4) and np.isnan(out["cpr"])
    assert "OSError" in out["note"]


def test_circuit_only_file_is_its_circuit():
    f = mib.read_mib(fixture(CIRCUIT_FILE))
    assert f.circuit_only and int(f.in_graph.sum()) == 10
    assert mib.recovery_only(f, "tracr-reverse")["auc"] == 1.0
    ev = mib.evaluate_file(fixture(CIRCUIT_FILE), "tracr-reverse")
    assert ev.auc == 1.0


BAD_EDGE = "input->a0.h0<q>"


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = mib.mib_dict(TRACR, 41, np.linspace(-1, 1, TRACR.n_edges))
    cases: dict[str, tuple[object, str]] = {}

    def variant(change):
        d = json.loads(json.dumps(good))
        change(d)
        return d

    cases["no_cfg"] = (variant(lambda d: d.pop("cfg")), "no 'cfg'")
    cases["no_nodes"] = (variant(lambda d: d.pop("nodes")), "no 'nodes'")
    cases["cfg_vs_edges"] = (variant(lambda d: d["cfg"].update(n_layers=5)), "do not match")
    cases["cfg_type"] = (variant(lambda d: d["cfg"].update(n_heads="1")), "cfg['n_heads']")
    cases["score_string"] = (
        variant(lambda d: d["edges"][BAD_EDGE].update(score="0.5")), "needs a finite number"
    )
    cases["score_null"] = (
        variant(lambda d: d["edges"][BAD_EDGE].update(score=None)), "needs a finite number"
    )
    cases["edge_number"] = (variant(lambda d: d["edges"].update({BAD_EDGE: 0.5})), BAD_EDGE)
    cases["in_graph_int"] = (
        variant(lambda d: d["edges"][BAD_EDGE].update(in_graph=1)), "needs true or false"
    )
    cases["bare_bool_node"] = (variant(lambda d: d["nodes"].update(m0=True)), "node 'm0'")

    def alias(d):
        d["edges"]["embed->m0"] = d["edges"]["input->m0"]

    cases["alias"] = (variant(alias), "the same")
    cases["unknown_node"] = (variant(lambda d: d["nodes"].update(m9={"in_graph": False})), "m9")
    cases["list"] = ([1, 2], "not an object")
    out = {}
    for name, (content, needle) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(content))
        out[name] = (path, needle)
    truncated = tmp_path / "truncated.json"
    truncated.write_text(json.dumps(good)[:500])
    out["truncated"] = (truncated, "not valid JSON")
    latin = tmp_path / "latin1.json"
    latin.write_bytes(json.dumps(good).replace("input", "inp\u00fct", 1).encode("latin-1"))
    out["not_utf8"] = (latin, "not UTF-8")
    return out


def test_every_bad_file_exits_2_naming_the_file_and_problem(tmp_path, capsys):
    for name, (path, needle) in _bad_files(tmp_path).items():
        assert mib.main(["import", str(path), "--task", "tracr-reverse"]) == 2, name
        err = capsys.readouterr().err
        assert str(path) in err and needle in err, (name, err)


def test_import_refuses_a_file_of_another_shape_than_the_task(tmp_path, capsys):
    other = EdgeGraph(n_layers=3, n_heads=2, has_mlp=True)
    path = mib.write_mib(tmp_path / "other.json", other, 8, np.ones(other.n_edges))
    assert mib.main(["import", str(path), "--task", "tracr-reverse"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "cfg does not match task 'tracr-reverse'" in err
    assert mib.main(["import", str(tmp_path / "none.json"), "--task", "tracr-reverse"]) == 2
    assert "no MIB file" in capsys.readouterr().err
    assert mib.main(["import", str(path), "--task", "nope"]) == 2
    assert "unknown task" in capsys.readouterr().err


def test_mib_names_and_sizes():
    assert mib.mib_folder_name("ioi") == "ioi_gpt2"
    assert mib.mib_folder_name("ioi@Qwen2.5-0.5B") == "ioi_qwen2.5"
    assert mib.mib_folder_name("ioi@gemma-2-2b") == "ioi_gemma2"
    with pytest.raises(mib.NoMibCounterpart, match="no MIB counterpart"):
        mib.mib_folder_name("tracr-reverse")
    assert len(mib.MIB_FRACTIONS) == 9 and max(mib.MIB_FRACTIONS) == 0.5
    assert mib.nearest_fraction(32491, 615) == 0.02  # 649 edges
    assert mib.nearest_fraction(77, 10) == 0.1  # 7 edges (20% gives 15)
    assert mib.nearest_fraction(77, None) == mib.DEFAULT_FRACTION


@pytest.fixture(scope="module")
def tiny_run(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("mib") / "run"
    argv = ["--plugin", "tests.eval.tiny", "--tasks", "_test-tiny", "--seeds", "1"]
    argv += ["--methods", "eap,eap-ig", "--inline", "--no-plots", "--out", str(out)]
    assert run.main(argv) == 0
    return out


def test_run_exports_and_import_reproduces_its_numbers(tiny_run, capsys):
    out = tiny_run
    recs = {r.method: r for r in read_records(out)}
    assert np.isnan(recs["eap"].completeness_gap)
    assert 0 <= recs["eap-ig"].completeness_gap < 0.05
    for method, rec in recs.items():
        path = out / mib.MIB / f"{run_name(method, '_test-tiny', 0)}.json"
        f = mib.read_mib(path)
        assert f.graph.n_edges == rec.n_edges and f.in_graph.any()  # a circuit is marked
        d = json.loads(path.read_text())
        assert all(set(v) == {"in_graph"} for v in d["nodes"].values())
        # MIB's sign convention is ours: the file carries the method's scores, signs included
        edges, scores = read_scores(out, method, "_test-tiny", 0)
        assert list(edges) == f.graph.edge_names
        np.testing.assert_array_equal(np.sign(f.scores), np.sign(scores.double().numpy()))
        np.testing.assert_allclose(f.scores, scores.double().numpy(), rtol=0, atol=0)
        ev = mib.evaluate_file(path, "_test-tiny", signed=rec.signed)
        for key in ("auc", "ap", "precision_at_k", "cpr", "cmd"):
            assert getattr(ev, key) == pytest.approx(getattr(rec, key), abs=1e-6), (method, key)
    capsys.readouterr()
    path = out / mib.MIB / f"{run_name('eap', '_test-tiny', 0)}.json"
    assert mib.main(["import", str(path), "--task", "_test-tiny"]) == 0
    text = capsys.readouterr().out
    printed = json.loads(text[text.index("{") :])  # TransformerLens may print a line first
    assert printed["cpr"] == pytest.approx(recs["eap"].cpr, abs=1e-6)
    assert printed["note"] == ""


def test_export_lays_out_mib_folders(tiny_run, tmp_path, monkeypatch, capsys):
    sub = tmp_path / "sub"
    assert mib.main(["export", str(tiny_run), "--out", str(sub)]) == 2
    assert "no MIB counterpart" in capsys.readouterr().err
    monkeypatch.setitem(mib.MIB_TASKS, "_test-tiny", "ioi")  # pretend it is MIB's IOI
    assert mib.main(["export", str(tiny_run), "--out", str(sub), "--method", "eap"]) == 0
    scored = sub / "eap" / "ioi_gpt2" / mib.SCORES_FILE
    assert sorted(p.name for p in scored.parent.iterdir()) == [mib.SCORES_FILE]
    _, scores = read_scores(tiny_run, "eap", "_test-tiny", 0)
    np.testing.assert_array_equal(mib.read_mib(scored).scores, scores.double().numpy())
    out = tmp_path / "circ"
    assert mib.main(["export", str(tiny_run), "--out", str(out), "--as", "circuits"]) == 0
    for method in ("eap", "eap-ig"):
        folder = out / method / "ioi_gpt2"
        files = sorted(folder.iterdir())
        assert len(files) == 9
        for frac in mib.MIB_FRACTIONS:
            f = mib.read_mib(folder / mib.circuit_file_name(frac))
            assert np.all(f.scores == 0.0)
            assert f.in_graph.sum() <= metrics.n_kept(frac, f.graph.n_edges)
    assert mib.main(["export", str(tmp_path), "--out", str(out)]) == 2
    assert "not a run folder" in capsys.readouterr().err
