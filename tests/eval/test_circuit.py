"""Circuits out of a run: the stored file, ``python -m eval.formats.circuit`` (text, dot, png, svg),
sizes and errors, on a hand-made run folder whose circuit is known by construction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.formats import circuit as cli
from eval.formats.circuits import (
    CIRCUITS,
    CircuitError,
    circuits_dict,
    load_circuit,
    read_circuits,
    write_circuits,
)
from eval.formats.draw_circuit import to_text
from eval.formats.found import read_scores, write_found
from eval.records import Record, write_run
from patching.prune import prune_dangling

# A 2-layer graph, cut down: edge -> score. Ranked by |score| (the run is unsigned).
EDGES = {
    "embed->a0.h0.q": 0.1,
    "embed->a0.h0.k": 0.2,
    "embed->a0.h0.v": 0.9,
    "embed->a0.h1.v": -0.8,
    "embed->a1.h0.q": 0.05,
    "a0.h0->a1.h0.k": 0.3,
    "a0.h1->a1.h0.v": 0.7,
    "a0.h0->a1.h0.v": 0.6,
    "embed->logits": 0.01,
    "a0.h0->logits": 0.02,
    "a0.h1->logits": 0.03,
    "a1.h0->logits": 1.0,
    "a1.h0->m1": 0.5,  # m1 reaches the logits only through the weakest edge: dangling
    "m1->logits": 0.001,
}
NAMES = list(EDGES)
TRUTH = {"embed->a0.h0.v", "embed->a0.h1.v", "a0.h1->a1.h0.v", "a1.h0->logits", "embed->a0.h0.q"}
FRACTIONS = (0.25, 0.5, 1.0)

TEXT_6 = """\
# _m on _t, seed 0: top 6 of 14 edges, 5 after pruning dangling edges (ranked by |score|)
# ground truth 5 edges: 4 in the circuit (TP), 1 not in the truth (FP), 1 missed
# layer 0
a0.h0.v <- embed
a0.h1.v <- embed
# layer 1
a1.h0.v <- a0.h1 a0.h0
# logits
logits <- a1.h0
"""


def make_run(folder, truth=True, extra_records=()):
    """A run folder as eval.run leaves it: records.csv, scores/, circuits/ for (_m, _t, 0)."""
    folder.mkdir(parents=True, exist_ok=True)
    records = [Record("_m", "_t", "resample", 0, n_edges=len(NAMES)), *extra_records]
    write_run(folder, records, [])
    scores = torch.tensor(list(EDGES.values()))
    write_found(folder, "_m", "_t", 0, NAMES, scores, {})
    mask = np.array([n in TRUTH for n in NAMES]) if truth else None
    content = circuits_dict("_m", "_t", 0, "resample", False, NAMES, scores, FRACTIONS, mask)
    write_circuits(folder, content)
    return folder


@pytest.fixture
def run_dir(tmp_path):
    failed = Record("_m", "_t", "resample", 1, status="error: boom")
    return make_run(tmp_path / "run", extra_records=[failed])


def main(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_text_is_exact(run_dir, capsys):
    code, out, _ = main([run_dir, "--method", "_m", "--task", "_t", "--edges", 6], capsys)
    assert code == 0
    assert out == TEXT_6


def test_default_size_is_the_ground_truths(run_dir):
    fraction, n = cli.default_size(run_dir, "_m", "_t", 0)
    assert (fraction, n) == (None, len(TRUTH))


def test_default_size_without_truth_is_5_percent(tmp_path):
    folder = make_run(tmp_path / "run", truth=False)
    assert read_circuits(folder, "_m", "_t", 0)["ground_truth"] is None
    assert cli.default_size(folder, "_m", "_t", 0) == (cli.DEFAULT_FRACTION, None)
    c = load_circuit(folder, "_m", "_t", 0, fraction=0.05)
    assert c.truth is None and c.marks() == {} and c.missed() == []
    # 5% of 14 edges is the top edge (or none, by the size rule); a1.h0->logits alone dangles
    assert c.n_top <= 1 and c.edges == ()
    assert to_text(c).splitlines()[-1].startswith("# no edge is left at this size")


def test_stored_file_holds_pruned_circuits_at_each_size(run_dir):
    stored = read_circuits(run_dir, "_m", "_t", 0)
    assert stored["n_edges"] == 14 and stored["signed"] is False
    assert sorted(stored["ground_truth"]) == sorted(TRUTH)
    assert [c["fraction"] for c in stored["circuits"]] == list(FRACTIONS)
    half = stored["circuits"][1]
    assert half["n_top"] == 7  # 50% of 14
    # top 7 by |score| less the dangling a1.h0->m1, most important first
    assert half["edges"] == [
        "a1.h0->logits",
        "embed->a0.h0.v",
        "embed->a0.h1.v",
        "a0.h1->a1.h0.v",
        "a0.h0->a1.h0.v",
        "a0.h0->a1.h0.k",
    ]
    everything = stored["circuits"][2]["edges"]
    assert sorted(everything) == sorted(NAMES)  # at 100% nothing dangles
    for c in stored["circuits"]:  # closed under pruning, and what the CLI rebuilds
        mask = np.array([n in c["edges"] for n in NAMES])
        assert (prune_dangling(NAMES, mask) == mask).all()
        rebuilt = load_circuit(run_dir, "_m", "_t", 0, fraction=c["fraction"])
        assert list(rebuilt.edges) == c["edges"] and rebuilt.n_top == c["n_top"]


def test_size_and_edges_select(run_dir, capsys):
    by_percent = load_circuit(run_dir, "_m", "_t", 0, fraction=cli.parse_size("50%"))
    by_fraction = load_circuit(run_dir, "_m", "_t", 0, fraction=cli.parse_size("0.5"))
    assert by_percent.edges == by_fraction.edges and len(by_percent.edges) == 6
    assert by_percent.label == "50%" and by_percent.n_top == 7
    six = load_circuit(run_dir, "_m", "_t", 0, n_edges=6)
    assert len(six.edges) == 5 and six.n_top == 6
    assert six.scores == pytest.approx((1.0, 0.9, -0.8, 0.7, 0.6))
    assert six.marks() == {
        "a1.h0->logits": "TP",
        "embed->a0.h0.v": "TP",
        "embed->a0.h1.v": "TP",
        "a0.h1->a1.h0.v": "TP",
        "a0.h0->a1.h0.v": "FP",
    }
    assert six.missed() == ["embed->a0.h0.q"]
    code, out, _ = main([run_dir, "--method", "_m", "--task", "_t", "--size", "50%"], capsys)
    assert code == 0 and out.splitlines()[0].endswith(
        "top 50% of 14 edges = 7, 6 after pruning dangling edges (ranked by |score|)"
    )
    assert "a1.h0.k <- a0.h0" in out


def test_dot_parses_with_the_circuits_structure(run_dir, capsys):
    pydot = pytest.importorskip("pydot")
    code, out, _ = main(
        [run_dir, "--method", "_m", "--task", "_t", "--edges", 6, "--format", "dot"], capsys
    )
    assert code == 0
    (graph,) = pydot.graph_from_dot_data(out)
    edges = sorted(
        (
            e.get_source().strip('"'),
            e.get_destination().strip('"'),
            e.get("label").strip('"'),
            e.get("style"),
        )
        for e in graph.get_edges()
    )
    # 5 kept edges (q/k/v roles as labels, -0.8 dashed) and the one missed ground-truth edge
    assert edges == [
        ("a0.h0", "a1.h0", "v FP", "solid"),
        ("a0.h1", "a1.h0", "v TP", "solid"),
        ("a1.h0", "logits", "TP", "solid"),
        ("embed", "a0.h0", "q missed", "dotted"),
        ("embed", "a0.h0", "v TP", "solid"),
        ("embed", "a0.h1", "v TP", "dashed"),
    ]
    ranks = [sorted(n.get_name().strip('"') for n in s.get_nodes()) for s in graph.get_subgraphs()]
    assert ranks == [["embed"], ["a0.h0", "a0.h1"], ["a1.h0"], ["logits"]]


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_drawing_written(run_dir, tmp_path, capsys, fmt):
    out = tmp_path / f"c.{fmt}"
    code, stdout, _ = main([run_dir, "--method", "_m", "--task", "_t", "--out", out], capsys)
    assert code == 0 and stdout.strip() == f"wrote {out}"
    head = out.read_bytes()[:200]
    assert head.startswith(b"\x89PNG") if fmt == "png" else b"<svg" in head
    # default file: in the run's plots/
    code, stdout, _ = main([run_dir, "--method", "_m", "--task", "_t", "--format", fmt], capsys)
    default = run_dir / "plots" / f"circuit__m___t__seed0.{fmt}"
    assert code == 0 and default.is_file()


def test_svg_marks_false_positives_and_missed(run_dir, tmp_path):
    from eval.formats.draw_circuit import FORMATS

    c = load_circuit(run_dir, "_m", "_t", 0, n_edges=6)
    svg = FORMATS["svg"](c, tmp_path / "c.svg").read_text()
    assert "ground truth: 4 of 5 edges found" in svg and "false positive" in svg
    no_truth = make_run(tmp_path / "bare", truth=False)
    bare = load_circuit(no_truth, "_m", "_t", 0, n_edges=6)
    svg = FORMATS["svg"](bare, tmp_path / "bare.svg").read_text()
    assert "ground truth" not in svg and "false positive" not in svg


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--method", "nope", "--task", "_t"], "method 'nope' is not in run"),
        (["--method", "_m", "--task", "nope"], "task 'nope' has no _m run"),
        (["--method", "_m", "--task", "_t", "--seed", "7"], "no seed 7 of _m on _t"),
        (["--method", "_m", "--task", "_t", "--seed", "1"], "found no circuit"),
        (["--method", "_m", "--task", "_t", "--size", "0%"], "must be in (0, 100%]"),
        (["--method", "_m", "--task", "_t", "--size", "five"], "a percentage like 5%"),
        (["--method", "_m", "--task", "_t", "--edges", "15"], "must be in 1..14"),
        (["--method", "_m", "--task", "_t", "--edges", "0"], "must be in 1..14"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(run_dir, capsys, argv, message):
    code, out, err = main([run_dir, *argv, "--format", "png"], capsys)
    assert code == 2 and out == ""
    assert message in err
    assert not (run_dir / "plots").exists()


def test_missing_run_folder_and_conflicting_sizes(tmp_path, run_dir, capsys):
    code, _, err = main([tmp_path / "none", "--method", "_m", "--task", "_t"], capsys)
    assert code == 2 and "no run folder" in err
    code, _, err = main([tmp_path, "--method", "_m", "--task", "_t"], capsys)
    assert code == 2 and "no records.csv" in err
    code, _, err = main(
        [run_dir, "--method", "_m", "--task", "_t", "--size", "5%", "--edges", "3"], capsys
    )
    assert code == 2 and "not allowed with argument" in err
    code, _, err = main(
        [run_dir, "--method", "_m", "--task", "_t", "--out", tmp_path / "no" / "c.png"], capsys
    )
    assert code == 2 and "no folder" in err and not (tmp_path / "no").exists()
    with pytest.raises(CircuitError, match="no run folder"):
        load_circuit(tmp_path / "none", "_m", "_t", 0, n_edges=3)


def test_run_without_circuits_file_still_prints(run_dir, capsys):
    """A run folder from before circuits were written: no ground truth, sign from records."""
    (run_dir / CIRCUITS / "_m___t__seed0.json").unlink()
    c = load_circuit(run_dir, "_m", "_t", 0, n_edges=6)
    assert c.truth is None and len(c.edges) == 5
    code, out, _ = main([run_dir, "--method", "_m", "--task", "_t"], capsys)
    assert code == 0 and "top 5% of 14 edges" in out and "ground truth" not in out


def test_every_run_writes_circuits_and_eval_run_draws_them(tiny, tmp_path):
    """eval.run (tiny task, eap and random, inline): circuits/<run>.json at the evaluated sizes,
    and one drawing per method in plots/."""
    from eval import run
    from eval.records import read_curves

    out = tmp_path / "run"
    argv = ["--plugin", "tests.eval.tiny", "--tasks", "_test-tiny", "--seeds", "1"]
    argv += ["--methods", "eap,random", "--inline", "--out", str(out)]
    assert run.main(argv) == 0
    curves = {c.method: c for c in read_curves(out)}
    for method in ("eap", "random"):
        stored = read_circuits(out, method, "_test-tiny", 0)
        assert [c["fraction"] for c in stored["circuits"]] == curves[method].fractions
        assert [c["n_top"] for c in stored["circuits"]] == curves[method].n_kept
        assert stored["ground_truth"]
        names, _ = read_scores(out, method, "_test-tiny", 0)
        for c in stored["circuits"]:
            assert len(c["edges"]) <= c["n_top"]
            mask = np.array([n in set(c["edges"]) for n in names])
            assert (prune_dangling(names, mask) == mask).all()
        assert (out / "plots" / f"circuit_{method}___test-tiny__seed0.png").is_file()


def test_text_of_a_per_position_circuit(tmp_path, capsys):
    """Per-position edges: the destination carries the position, sources are read there too."""
    folder = tmp_path / "pos"
    folder.mkdir()
    names = ["embed->a0.h0.v@1", "embed->a0.h0.k@0", "a0.h0->logits@1", "embed->logits@0"]
    scores = torch.tensor([0.5, 0.4, 0.9, 0.1])
    write_run(folder, [Record("_m", "_t", "resample", 0)], [])
    write_found(folder, "_m", "_t", 0, names, scores, {})
    write_circuits(
        folder, circuits_dict("_m", "_t", 0, "resample", False, names, scores, [1.0], None)
    )
    code, out, _ = main([folder, "--method", "_m", "--task", "_t", "--edges", 4], capsys)
    assert code == 0
    assert out.splitlines()[1:] == [
        "# layer 0",
        "a0.h0.k@0 <- embed",
        "a0.h0.v@1 <- embed",
        "# logits",
        "logits@0 <- embed",
        "logits@1 <- a0.h0",
    ]
