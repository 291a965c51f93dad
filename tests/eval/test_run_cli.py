"""Bad input to ``eval.run`` gives a clear error and exit code 2, and writes no records."""

from __future__ import annotations

import json

import pytest
import torch

from eval import run
from eval.records import RECORDS, Record, write_run
from patching.ablation import ABLATION_KINDS

TINY = ["--plugin", "tests.eval.tiny", "--tasks", "_test-tiny", "--no-plots"]


def _main(capsys, *argv):
    code = run.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list(tiny, capsys):
    code, out, _ = _main(capsys, "--list")
    assert code == 0
    assert "methods:" in out and "tasks:" in out
    assert "_test-grad" in out and "|d metric / d mask|" in out
    assert "_test-unavailable" in out and "[unavailable: needs hardware" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--methods", "_test-grd"], "unknown method '_test-grd'. Did you mean: _test-grad"),
        (["--methods", "_test-grad", "--tasks", "_test-tny"], "Did you mean: _test-tiny"),
        (["--methods", "_test-grad,nope"], "unknown method 'nope'"),
        (["--methods", ","], "no method named"),
        (["--methods", "_test-grad", "--seeds", "0"], "--seeds must be at least 1, got 0"),
        (["--methods", "_test-grad", "--n", "0"], "--n must be at least 1"),
        (["--methods", "_test-grad", "--plugin", "no.such.module"], "No module named 'no'"),
    ],
)
def test_bad_input_exits_2(tiny, tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    code, _, err = _main(capsys, *TINY, *argv, "--out", str(out))
    assert code == 2
    assert message in err and err.startswith("error: ")
    assert not (out / RECORDS).exists()


def test_argparse_errors_exit_2(tiny, capsys):
    assert _main(capsys, "--ablation", "sideways")[0] == 2
    assert _main(capsys, "--seeds", "three")[0] == 2
    assert _main(capsys, "--help")[0] == 0


def test_ablation_choices_match_the_ablation_table():
    assert set(run.ABLATION_CHOICES) == set(ABLATION_KINDS)


def test_unwritable_output_folder(tiny, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = _main(capsys, *TINY, "--methods", "_test-grad", "--out", str(blocker / "run"))
    assert code == 2 and "can't write to output folder" in err


def test_existing_run_is_not_overwritten(tiny, tmp_path, capsys):
    write_run(tmp_path, [Record("x", "y", "resample", 0)], [])
    before = (tmp_path / RECORDS).read_text()
    code, _, err = _main(capsys, *TINY, "--methods", "_test-grad", "--out", str(tmp_path))
    assert code == 2 and "--overwrite" in err
    assert (tmp_path / RECORDS).read_text() == before


def test_baseline_of_another_schema(tiny, tmp_path, capsys):
    old = tmp_path / "baseline.json"
    old.write_text(json.dumps({"schema": "something-else/7", "entries": []}))
    out = tmp_path / "out"
    code, _, err = _main(
        capsys, *TINY, "--methods", "_test-grad", "--out", str(out), "--check", str(old)
    )
    assert code == 2 and "schema 'something-else/7'" in err and "eval.baseline" in err
    assert not out.exists()  # nothing was created before the inputs were checked


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_requested_without_cuda(tiny, tmp_path, capsys):
    code, _, err = _main(
        capsys, *TINY, "--methods", "_test-grad", "--device", "cuda", "--out", str(tmp_path / "o")
    )
    assert code == 2 and "CUDA is not available" in err
