"""Issue 20 item 7: --overwrite removes exactly what the previous run wrote (its manifest):
the old methods' circuits/, mib/, scores/ files too, and never a file of the user's."""

from __future__ import annotations

import json

from eval import run
from eval.manifest import MANIFEST, remove_previous_run
from eval.records import read_records

TINY = ["--plugin", "tests.eval.tiny", "--tasks", "_test-tiny", "--seeds", "1", "--inline"]


def _files(folder):
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_overwrite_removes_what_the_previous_run_wrote_and_nothing_else(tiny, tmp_path):
    out = tmp_path / "run"
    assert run.main([*TINY, "--methods", "_test-grad", "--no-plots", "--out", str(out)]) == 0
    first = _files(out)
    assert any(f.startswith("circuits/_test-grad") for f in first)
    assert set(json.loads((out / MANIFEST).read_text())) == first - {".lock"}
    (out / "scores" / "mine.txt").write_text("the user's own notes")
    (out / "circuits" / "mine.json").write_text("{}")
    argv = [*TINY, "--methods", "_test-random", "--no-plots", "--out", str(out), "--overwrite"]
    assert run.main(argv) == 0
    now = _files(out)
    assert not [f for f in now if "_test-grad" in f]  # no file of the old run's method
    assert {"scores/mine.txt", "circuits/mine.json"} <= now
    assert [r.method for r in read_records(out)] == ["_test-random"]
    assert "scores/mine.txt" not in json.loads((out / MANIFEST).read_text())


def test_a_manifest_never_reaches_outside_the_folder(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "records.csv").write_text("x")
    (folder / MANIFEST).write_text(json.dumps(["../precious.txt", str(outside), "records.csv"]))
    assert remove_previous_run(folder) == ["records.csv"]
    assert outside.read_text() == "keep"
