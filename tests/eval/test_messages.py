"""Issue 20, problems checked before a run and named: a prompt longer than the model's context,
a damaged model or run file, token ids that aren't, bytes that aren't UTF-8, a BOM header, a
cut-short records.csv; eval.formats.circuit --out of another format's suffix."""

from __future__ import annotations

import shutil

import pytest

from eval import run
from eval.records import RECORDS, read_records
from tests.eval.test_circuit import main as circuit_main
from tests.eval.test_circuit import make_run
from tests.files import BASE, EXAMPLE

HEADER = "clean,corrupted,answer,wrong_answer\n"


pytestmark = pytest.mark.usefixtures("restore_tasks")


def _run_file(tmp_path, capsys, data: bytes | str, name="pairs.csv", *extra):
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    out = tmp_path / "run"
    code = run.main([*BASE, "--methods", "random", "--tasks", str(path), "--out", str(out), *extra])
    assert not (out / RECORDS).exists() or code == 0
    return code, capsys.readouterr().err, path


def _rows(n_rows: int, clean: str | None = None) -> str:
    lines = EXAMPLE.read_text().splitlines()[1 : n_rows + 1]
    if clean is not None:
        lines[1] = f"{clean},{clean},1,2"
    return HEADER + "\n".join(lines) + "\n"


def test_prompt_longer_than_the_context_exits_2(tmp_path, capsys):
    long = " ".join(["1"] * 30)  # the induction model's context is 25 tokens
    code, err, path = _run_file(tmp_path, capsys, _rows(6, long))
    assert code == 2 and f"{path}:3: the prompt is 30 tokens" in err
    assert "context holds 25" in err and "Traceback" not in err


@pytest.mark.parametrize("token", ["-1", "3.5"])
def test_a_bad_token_id_is_named_with_its_line(tmp_path, capsys, token):
    code, err, path = _run_file(tmp_path, capsys, _rows(6, f"0 5 {token} 7"))
    assert code == 2 and f"{path}:3: clean holds {token!r}, not a token id" in err


def test_bytes_that_are_not_utf8_name_file_and_line(tmp_path, capsys):
    data = _rows(6).encode().replace(b"\n0 ", b"\n\xff0 ", 3)
    code, err, path = _run_file(tmp_path, capsys, data)
    assert code == 2 and f"{path}:2: byte 0xff is not UTF-8 text" in err


def test_a_utf8_bom_header_is_accepted(tmp_path, capsys):
    code, err, _ = _run_file(tmp_path, capsys, b"\xef\xbb\xbf" + _rows(40).encode())
    assert code == 0, err


def test_a_damaged_model_under_a_file_task_exits_2(tmp_path, capsys, monkeypatch):
    from tasks.induction import model

    for name in ("model.safetensors", "model.safetensors.sha256"):
        shutil.copy(model.CHECKPOINT.parent / name, tmp_path / name)
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:-100])
    monkeypatch.setattr(model, "CHECKPOINT", ckpt)  # the source "induction" reads it when used
    code, err, _ = _run_file(tmp_path, capsys, _rows(40))
    assert code == 2 and f"weights file {ckpt} is damaged" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "path, cut",
    [("scores/_m___t__seed0.pt", 50), ("circuits/_m___t__seed0.json", 40)],
)
def test_eval_circuit_names_a_damaged_file(tmp_path, capsys, path, cut):
    folder = make_run(tmp_path / "run")
    damaged = folder / path
    damaged.write_bytes(damaged.read_bytes()[:cut])
    code, _, err = circuit_main([folder, "--method", "_m", "--task", "_t"], capsys)
    assert code == 2 and f"{damaged} is damaged" in err


@pytest.mark.parametrize("argv", [["--out", "c.pdf"], ["--out", "c.png", "--format", "dot"]])
def test_eval_circuit_refuses_an_out_suffix_of_another_format(tmp_path, capsys, argv):
    folder = make_run(tmp_path / "run")
    argv = [a if a.startswith("-") or a == "dot" else str(tmp_path / a) for a in argv]
    code, _, err = circuit_main([folder, "--method", "_m", "--task", "_t", *argv], capsys)
    assert code == 2 and "can't hold the" in err
    assert not (tmp_path / "c.pdf").exists() and not (tmp_path / "c.png").exists()


def test_a_cut_short_last_record_says_how_to_recover(tmp_path):
    folder = make_run(tmp_path / "run")
    text = (folder / RECORDS).read_text()
    (folder / RECORDS).write_text(text + "_m,_t,resample,1,ok,3\n")
    with pytest.raises(ValueError) as exc:
        read_records(folder)
    message = str(exc.value)
    assert "last line (3) is cut short: delete that line" in message
    assert "rerun or --resume" not in message
