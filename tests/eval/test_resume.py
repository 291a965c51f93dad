"""--resume: same config or exit 2 naming the difference; only unfinished jobs rerun."""

from __future__ import annotations

import json
import sys

import pytest

from eval import run
from eval.records import RUN_INFO, read_records

BASE = [
    "--plugin",
    "tests.eval.tiny",
    "--plugin",
    "tests.eval.faulty",
    "--no-plots",
    "--tasks",
    "_test-tiny",
    "--inline",
]


@pytest.fixture(scope="module")
def faulty(tiny):
    import importlib

    yield importlib.import_module("tests.eval.faulty")
    sys.modules.pop("tests.eval.faulty", None)


def _run(capsys, *argv):
    code = run.main([*BASE, *argv])
    return code, capsys.readouterr().err


def test_resume_reruns_only_unfinished_jobs(faulty, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--methods", "_test-grad,_test-broken", "--seeds", "2"]
    assert _run(capsys, *args, "--out", str(out))[0] == 1
    first = {r.key: r for r in read_records(out)}
    # drop one finished record, as if the run had been interrupted before it
    lines = (out / "records.csv").read_text().splitlines()
    (out / "records.csv").write_text("\n".join(lines[:2]) + "\n")  # header + grad seed 0
    code, _ = _run(capsys, *args, "--resume", str(out))
    assert code == 1  # _test-broken still fails
    recs = read_records(out)
    assert [(r.method, r.seed) for r in recs] == [
        ("_test-grad", 0),
        ("_test-grad", 1),
        ("_test-broken", 0),
        ("_test-broken", 1),
    ]
    grad0 = next(r for r in recs if r.method == "_test-grad" and r.seed == 0)
    assert grad0.seconds == first[grad0.key].seconds  # kept, not rerun
    assert json.loads((out / RUN_INFO).read_text())["status"] == "finished"


@pytest.mark.parametrize(
    "change,message",
    [
        (["--seeds", "3"], "seeds: the run has 2, this command 3"),
        (["--seeds", "2", "--n", "4"], "ns: the run has {'_test-tiny': 6}"),
    ],
)
def test_resume_with_another_config_exits_2(faulty, tmp_path, capsys, change, message):
    out = tmp_path / "run"
    assert _run(capsys, "--methods", "_test-grad", "--seeds", "2", "--out", str(out))[0] == 0
    before = (out / "records.csv").read_text()
    code, err = _run(capsys, "--methods", "_test-grad", *change, "--resume", str(out))
    assert code == 2 and "differs from the run's" in err and message in err
    assert (out / "records.csv").read_text() == before


def test_resume_needs_a_run(faulty, tmp_path, capsys):
    code, err = _run(capsys, "--methods", "_test-grad", "--resume", str(tmp_path))
    assert code == 2 and "no run there" in err
    code, err = _run(capsys, "--methods", "_test-grad", "--resume", str(tmp_path / "nope"))
    assert code == 2 and "no such folder" in err


def test_resume_and_overwrite_contradict(faulty, tmp_path, capsys):
    code, err = _run(capsys, "--methods", "_test-grad", "--resume", str(tmp_path), "--overwrite")
    assert code == 2 and "--overwrite discards them" in err


def test_resume_command_keeps_the_arguments_and_drops_out_and_overwrite():
    from pathlib import Path

    from eval.resume import resume_command

    cmd = "python -m eval.run --methods eap --out 'my run' --overwrite --seeds 2 --out=x"
    assert resume_command(cmd, Path("my run")) == (
        "python -m eval.run --methods eap --seeds 2 --resume 'my run'"
    )


def test_resume_keeps_one_skip_record_per_job_of_an_unavailable_task(faulty, tmp_path, capsys):
    """A task that can't run here has a skip record for each (method, seed) after a resume too:
    none lost when the records that were dropped include skips, none doubled."""
    out = tmp_path / "run"
    args = ["--methods", "_test-grad,_test-random", "--seeds", "1",
            "--tasks", "_test-tiny,_test-unavailable"]  # fmt: skip
    assert _run(capsys, *args, "--out", str(out))[0] == 0
    before = sorted((r.method, r.task, r.status.split(":")[0]) for r in read_records(out))
    lines = (out / "records.csv").read_text().splitlines()
    header = lines[0]
    kept = [ln for ln in lines[1:] if "_test-random" not in ln]  # drop a job and a skip
    (out / "records.csv").write_text("\n".join([header, *kept]) + "\n")
    assert _run(capsys, *args, "--resume", str(out))[0] == 0
    after = sorted((r.method, r.task, r.status.split(":")[0]) for r in read_records(out))
    assert after == before and len(after) == 4
