"""Each defect D2, D3, D5-D12 of issue 14 (and --timeout): a test that fails on the old runner.

(D1 is in tests/core/test_checksum.py, D4 in test_signals.py, resume in test_resume.py.)
"""

from __future__ import annotations

import json
import sys

import pytest

from eval import baseline as baseline_mod
from eval import plots, run
from eval.lock import FolderLock
from eval.records import RECORDS, RUN_INFO, Record, read_records, write_run

TINY = ["--plugin", "tests.eval.tiny", "--plugin", "tests.eval.faulty", "--no-plots"]


@pytest.fixture(scope="module")
def faulty(tiny):
    """The tiny and faulty test entries (removed with tiny's at the module's end)."""
    import importlib

    module = importlib.import_module("tests.eval.faulty")
    yield module
    sys.modules.pop("tests.eval.faulty", None)


def _main(capsys, *argv):
    code = run.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _grad_run(out, *extra):
    return [
        *TINY,
        "--methods",
        "_test-grad",
        "--tasks",
        "_test-tiny",
        "--seeds",
        "1",
        "--out",
        str(out),
        *extra,
    ]


# D2: one writer per folder, whatever the flags
@pytest.mark.parametrize("flags", [[], ["--overwrite"]])
def test_second_writer_is_refused(faulty, tmp_path, capsys, flags):
    out = tmp_path / "run"
    out.mkdir()
    held = FolderLock(out)  # another eval.run writing this folder
    try:
        code, _, err = _main(capsys, *_grad_run(out, *flags))
    finally:
        held.release()
    assert code == 2 and "being written by another eval.run" in err
    assert not (out / RECORDS).exists()


def test_lock_is_released_after_a_run(faulty, tmp_path, capsys):
    out = tmp_path / "run"
    assert _main(capsys, *_grad_run(out, "--executor", "inline"))[0] == 0
    FolderLock(out).release()  # would raise FolderLocked if still held


# D9: --overwrite empties the folder (the run's outputs only)
def test_overwrite_removes_the_previous_runs_files(faulty, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "logs").mkdir(parents=True)
    (out / "logs" / "old-method__old-task__seed0.log").write_text("old")
    (out / "plots").mkdir()
    (out / "plots" / "old.png").write_text("old")
    (out / "notes.txt").write_text("the user's own file")
    write_run(out, [Record("old-method", "old-task", "resample", 0)], [])
    code, _, _ = _main(capsys, *_grad_run(out, "--overwrite", "--executor", "inline"))
    assert code == 0
    assert not (out / "plots").exists() and not (out / "logs").exists()
    assert [r.method for r in read_records(out)] == ["_test-grad"]
    assert (out / "notes.txt").read_text() == "the user's own file"


# D3: baseline files checked before work starts
def _baseline(tmp_path, data, raw: bytes | None = None):
    path = tmp_path / "baseline.json"
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text(json.dumps(data))
    return path


ENTRY = dict(
    method="_test-grad",
    task="_test-tiny",
    ablation="resample",
    n=6,
    device="cpu",
    auc=1.0,
    cpr=0.5,
    seconds=0.1,
    auc_tol=0.02,
    cpr_tol=0.05,
    time_factor=2.0,
    time_floor_s=1.0,
)


@pytest.mark.parametrize(
    "data,raw,message",
    [
        ({"schema": baseline_mod.SCHEMA}, None, "no 'entries' list"),
        (
            {"schema": baseline_mod.SCHEMA, "entries": [{**ENTRY, "auc": "high"}]},
            None,
            "entry 0: auc must be a number",
        ),
        (
            {"schema": baseline_mod.SCHEMA, "entries": [{**ENTRY, "time_factor": None}]},
            None,
            "entry 0: time_factor must be a number",
        ),
        (
            {"schema": baseline_mod.SCHEMA, "entries": [{**ENTRY, "n": None}]},
            None,
            "entry 0: n must be a positive integer",
        ),
        (
            {"schema": baseline_mod.SCHEMA, "entries": ["not an entry"]},
            None,
            "entry 0 is not an object",
        ),
        (None, b'{"schema": "\xff\xfe"}', "is not UTF-8"),
    ],
)
def test_bad_baseline_exits_2_before_work(faulty, tmp_path, capsys, data, raw, message):
    path = _baseline(tmp_path, data, raw)
    out = tmp_path / "out"
    code, _, err = _main(capsys, *_grad_run(out, "--check", str(path)))
    assert code == 2 and message in err and str(path) in err
    assert not (out / RECORDS).exists()


# D5: --n above a task's limit
def test_n_above_the_tasks_limit_exits_2(faulty, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(faulty.TinyTask, "max_examples", 8)
    out = tmp_path / "out"
    code, _, err = _main(capsys, *_grad_run(out, "--n", "9"))
    assert code == 2 and "--n 9: task '_test-tiny' gives at most 8 train examples" in err
    assert not (out / RECORDS).exists()


# D6: an unwritable --write-baseline path fails up front
def test_unwritable_write_baseline_exits_2(faulty, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = tmp_path / "out"
    code, _, err = _main(capsys, *_grad_run(out, "--write-baseline", str(blocker / "b.json")))
    assert code == 2 and "--write-baseline" in err and "is not a folder" in err
    assert not (out / RECORDS).exists()


# D7: a plugin raising anything is a usage error
@pytest.mark.parametrize(
    "source,message",
    [
        ("raise RuntimeError('plugin broke')", "RuntimeError: plugin broke"),
        ("def f(:\n", "SyntaxError"),
        (
            "from methods.base import Method, register_method\n"
            "@register_method('_test-grad')\nclass Again(Method):\n"
            "    def scores(self, problem): ...\n",
            "already registered",
        ),
    ],
)
def test_failing_plugin_exits_2(faulty, tmp_path, capsys, monkeypatch, source, message):
    name = f"_plugin_{abs(hash(source))}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    code, _, err = _main(capsys, *_grad_run(out, "--plugin", name))
    assert code == 2 and f"--plugin {name} failed to import" in err and message in err
    assert not (out / RECORDS).exists()
    sys.modules.pop(name, None)


# D8: damaged inputs to plots and baseline are named with file and line
def _good_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert _main(capsys, *_grad_run(out, "--executor", "inline"))[0] == 0
    return out


def test_records_cut_mid_row(faulty, tmp_path, capsys):
    out = _good_run(tmp_path, capsys)
    text = (out / RECORDS).read_text()
    (out / RECORDS).write_text(text[: len(text) - 40])
    for tool in (plots.main, baseline_mod.main):
        code = tool(
            [str(out), *(["--out", str(tmp_path / "b.json")] if tool is not plots.main else [])]
        )
        err = capsys.readouterr().err
        assert code == 2, tool
        assert f"{out / RECORDS}, line 2" in err


def test_curves_missing_or_mismatched(faulty, tmp_path, capsys):
    out = _good_run(tmp_path, capsys)
    curves = json.loads((out / "curves.json").read_text())
    curves[0]["tpr"] = curves[0]["tpr"][:-1]
    (out / "curves.json").write_text(json.dumps(curves))
    assert plots.main([str(out)]) == 2
    assert "curves.json: entry 0" in capsys.readouterr().err
    (out / "curves.json").unlink()
    assert plots.main([str(out)]) == 2
    assert "no curves.json" in capsys.readouterr().err


def test_baseline_refuses_an_unfinished_run(faulty, tmp_path, capsys):
    out = _good_run(tmp_path, capsys)
    info = json.loads((out / RUN_INFO).read_text())
    (out / RUN_INFO).write_text(json.dumps({**info, "status": "interrupted"}))
    assert baseline_mod.main([str(out), "--out", str(tmp_path / "b.json")]) == 2
    assert "interrupted" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


# D10: an empty ground truth is an error, not ok with NaN AUC
def test_empty_ground_truth_is_an_error(faulty, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        *TINY,
        "--methods",
        "_test-grad",
        "--tasks",
        "_test-empty",
        "--seeds",
        "1",
        "--out",
        str(out),
        "--executor",
        "inline",
    ]
    assert _main(capsys, *argv)[0] == 1
    (rec,) = read_records(out)
    assert rec.status.startswith("error: ") and "empty ground truth" in rec.status


# D11: sys.exit in a method, inline, is a failed job, not the end of the benchmark
def test_inline_sys_exit_is_a_failure(faulty, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        *TINY,
        "--methods",
        "_test-exit,_test-grad",
        "--tasks",
        "_test-tiny",
        "--seeds",
        "1",
        "--out",
        str(out),
        "--inline",
    ]
    code, _, err = _main(capsys, *argv)
    assert code == 1
    recs = {r.method: r for r in read_records(out)}
    assert recs["_test-exit"].status == "error: SystemExit: 0"
    assert recs["_test-grad"].ok  # the run went on
    assert (out / "summary.md").is_file()


# D12: a run in which every job was skipped exits 1 and says why
def test_all_skipped_exits_1(faulty, tmp_path, capsys):
    argv = [
        *TINY,
        "--methods",
        "_test-grad",
        "--tasks",
        "_test-unavailable",
        "--seeds",
        "1",
        "--out",
        str(tmp_path / "out"),
    ]
    code, _, err = _main(capsys, *argv)
    assert code == 1
    assert "nothing ran" in err and "needs hardware this machine lacks" in err


# --timeout: a hung job is stopped and recorded; the run goes on
def test_timeout_records_and_moves_on(faulty, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        *TINY,
        "--methods",
        "_test-hang,_test-grad",
        "--tasks",
        "_test-tiny",
        "--seeds",
        "1",
        "--out",
        str(out),
        "--timeout",
        "4",
    ]
    code, _, _ = _main(capsys, *argv)
    assert code == 1
    recs = {r.method: r for r in read_records(out)}
    assert recs["_test-hang"].status == "timeout: no result within 4 s (--timeout)"
    assert recs["_test-grad"].ok


def test_timeout_needs_a_process(faulty, tmp_path, capsys):
    code, _, err = _main(capsys, *_grad_run(tmp_path / "o", "--inline", "--timeout", "5"))
    assert code == 2 and "--timeout needs a process per job" in err


def test_unknown_executor_suggests(faulty, tmp_path, capsys):
    code, _, err = _main(capsys, *_grad_run(tmp_path / "o", "--executor", "rya"))
    assert code == 2 and "unknown executor 'rya'. Did you mean: ray" in err


def test_speed_unwritable_out_exits_2_before_measuring(tmp_path, capsys, monkeypatch):
    from eval.speed import step

    def measured(*args, **kwargs):
        raise AssertionError("measured before checking --out")

    monkeypatch.setattr(step, "run", measured)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert step.main(["--out", str(blocker / "speed.json")]) == 2
    assert "--out" in capsys.readouterr().err
