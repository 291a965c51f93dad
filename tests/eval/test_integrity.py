"""Issue 20, records that never mix data: two files of one name are two tasks; ``--resume``
refuses a run whose data, truth, metric or model changed since."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval import run
from eval.records import RECORDS, read_records
from tasks.file_task import distinct_keys
from tests.files import BASE, EXAMPLE
from tests.files import TRUTH as TRUTH_PATH

TRUTH = str(TRUTH_PATH)


pytestmark = pytest.mark.usefixtures("restore_tasks")


def _two_files(tmp_path) -> tuple[Path, Path]:
    """``a/pairs.csv`` (the example) and ``b/pairs.csv`` (its first 21 rows, other numbers)."""
    lines = EXAMPLE.read_text().splitlines(keepends=True)
    a, b = tmp_path / "a" / "pairs.csv", tmp_path / "b" / "pairs.csv"
    a.parent.mkdir()
    b.parent.mkdir()
    a.write_text("".join(lines))
    b.write_text("".join(lines[:22]))
    return a, b


def test_distinct_keys_for_files_of_one_name():
    keys = distinct_keys(["/d/a/x.csv", "/d/b/x.csv", "/d/y.csv", "/e/a/x.jsonl"])
    assert keys["/d/y.csv"] == "file-y"
    assert len(set(keys.values())) == 4
    assert keys["/d/a/x.csv"] == "file-d-a-x" and keys["/d/b/x.csv"] == "file-b-x"
    same = distinct_keys(["/d/x.csv", "/d/x.jsonl"])
    assert len(set(same.values())) == 2


def test_two_files_of_one_name_are_two_tasks(tmp_path):
    a, b = _two_files(tmp_path)
    both, alone = tmp_path / "both", tmp_path / "alone"
    argv = ["--methods", "random", "--metric", "logprob"]
    assert run.main([*BASE, *argv, "--tasks", f"{a},{b}", "--out", str(both)]) == 0
    assert run.main([*BASE, *argv, "--tasks", str(a), "--out", str(alone)]) == 0
    recs = {r.task: r for r in read_records(both)}
    assert sorted(recs) == ["file-a-pairs", "file-b-pairs"]
    (ref,) = read_records(alone)
    assert recs["file-a-pairs"].metric_clean == pytest.approx(ref.metric_clean)
    assert recs["file-a-pairs"].n_heldout == ref.n_heldout == 13
    assert recs["file-b-pairs"].n_heldout == 7  # its own rows, not the other file's


@pytest.mark.parametrize("change", ["data", "metric", "truth"])
def test_resume_refuses_changed_inputs(tmp_path, capsys, change):
    data = tmp_path / "pairs.csv"
    data.write_text(EXAMPLE.read_text())
    out = tmp_path / "run"
    argv = ["--methods", "random", "--tasks", str(data), "--metric", "logprob"]
    assert run.main([*BASE, *argv, "--truth", TRUTH, "--out", str(out)]) == 0
    before = (out / RECORDS).read_text()
    (out / RECORDS).write_text(before.splitlines()[0] + "\n")  # as if interrupted
    truth = ["--truth", TRUTH]
    if change == "data":  # same rows, swapped: same size and line count, other content
        lines = EXAMPLE.read_text().splitlines(keepends=True)
        data.write_text("".join([lines[0], lines[2], lines[1], *lines[3:]]))
    elif change == "metric":
        argv[-1] = "kl"
    else:
        truth = []
    capsys.readouterr()
    code = run.main([*BASE, *argv, *truth, "--resume", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "differs from the run's" in err
    expected = {"data": "data_sha256", "metric": "metric", "truth": "truth"}[change]
    assert f"inputs.file-pairs.{expected}:" in err
    assert (out / RECORDS).read_text() == before.splitlines()[0] + "\n"


def test_resume_with_same_inputs_runs(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--methods", "random", "--tasks", str(EXAMPLE), "--metric", "logprob"]
    assert run.main([*BASE, *argv, "--out", str(out)]) == 0
    assert run.main([*BASE, *argv, "--resume", str(out)]) == 0


def test_a_run_from_before_input_hashes_resumes_without_file_tasks(tiny, tmp_path):
    import json

    from eval.records import RUN_INFO

    out = tmp_path / "run"
    argv = ["--plugin", "tests.eval.tiny", "--tasks", "_test-tiny", "--methods", "_test-random"]
    argv += ["--seeds", "1", "--inline", "--no-plots"]
    assert run.main([*argv, "--out", str(out)]) == 0
    info = json.loads((out / RUN_INFO).read_text())
    del info["config"]["inputs"]
    (out / RUN_INFO).write_text(json.dumps(info))
    assert run.main([*argv, "--resume", str(out)]) == 0
