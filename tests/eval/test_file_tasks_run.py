"""``eval.run --tasks FILE --model ...`` end to end on the shipped induction example (token
ids, offline), with and without a ground truth; bad files and flags exit 2 before any record;
a worker process rebuilds a file task from the job's spec."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from eval import run
from eval.records import RECORDS, read_records
from eval.worker import Job, run_job
from tasks.base import TASKS
from tasks.file_task import FileTaskSpec
from tests import files
from tests.files import BASE

EXAMPLE = str(files.EXAMPLE)
TRUTH = str(files.TRUTH)


pytestmark = pytest.mark.usefixtures("restore_tasks")


def test_induction_example_with_truth(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--tasks", EXAMPLE, "--methods", "eap,random", "--truth", TRUTH, "--out", str(out)]
    assert run.main(BASE + argv) == 0
    recs = {r.method: r for r in read_records(out)}
    assert all(r.ok and r.task == "file-induction_pairs" for r in recs.values())
    assert recs["eap"].n_true_edges == 27 and recs["eap"].n_edges == 81 and recs["eap"].n == 27
    # measured on this file (seed 0): eap ranks the recorded circuit well above chance
    assert recs["eap"].auc == pytest.approx(0.845, abs=0.02)
    assert recs["eap"].auc > recs["random"].auc + 0.2
    # faithfulness is scored on the 13 held-out rows (9.49 over all 40, see test_file_task.py)
    assert recs["eap"].metric_clean == pytest.approx(9.606, abs=0.02)
    assert recs["eap"].n_heldout == 13
    assert not recs["eap"].note
    assert (out / "scores").is_dir()


def test_induction_example_without_truth_is_faithfulness_only(tmp_path):
    out = tmp_path / "run"
    # activation-patching, not eap: eap's gradient of the KL is exactly 0 at the clean input, so
    # every eap score is float residue, one tie under the evaluator's rule
    # (eval.scoring.metrics.Ties)
    argv = ["--tasks", EXAMPLE, "--methods", "activation-patching", "--metric", "kl"]
    argv += ["--out", str(out)]
    assert run.main(BASE + argv) == 0
    (rec,) = read_records(out)
    assert rec.ok and math.isnan(rec.auc) and math.isnan(rec.ap) and rec.n_true_edges == 0
    assert 0.5 < rec.cpr <= 1.0 and "no ground truth" in rec.note
    summary = (out / "summary.md").read_text()
    assert "## Notes" in summary and "faithfulness only" in summary


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tasks", "missing.csv", "--model", "induction"], "missing.csv: no such file"),
        (["--tasks", EXAMPLE], "say which model runs it with --model"),
        (["--tasks", "induction", "--metric", "kl"], "name a prompt-pair file"),
        (["--tasks", EXAMPLE, "--model", "induction", "--metric", "klx"], "unknown metric"),
        (["--tasks", EXAMPLE, "--model", "induction", "--n", "41"], "at most 27"),
    ],
)
def test_bad_file_input_exits_2_before_any_record(tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    code = run.main(["--methods", "eap", "--no-plots", "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert not (out / RECORDS).exists()


def test_bad_line_is_named(tmp_path, capsys):
    bad = tmp_path / "pairs.csv"
    bad.write_text("clean,corrupted,answer,wrong_answer\n0 1 2,0 3 4,5,6\n0 1 2,0 3,5,6\n")
    code = run.main([*BASE, "--methods", "eap", "--tasks", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and f"{bad}:3: clean is 3 tokens and corrupted 2" in err


def test_worker_rebuilds_the_task_from_the_job_spec():
    spec = FileTaskSpec(EXAMPLE, "induction", "logprob", TRUTH)
    assert spec.task_key not in TASKS  # a fresh worker process has not seen the file
    job = Job.from_json(
        Job("random", spec.task_key, 0, "resample", 8, task_spec=spec.to_dict()).to_json()
    )
    outcome = run_job(job, isolated=False)
    assert outcome.record.ok, outcome.record.status
    assert outcome.record.n_true_edges == 27 and outcome.record.n == 8


WORDS = "when mary john anna paul went to the store , gave a drink".split()


@pytest.fixture(scope="module")
def local_model(tmp_path_factory) -> Path:
    """A tiny random GPT-2 with a word-level tokenizer, saved as a local model folder (the text
    path of file tasks, offline: hub-free tokenizer and ``from_pretrained`` from a path)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from models.random import tiny_hf_model

    folder = tmp_path_factory.mktemp("local-gpt2")
    vocab = {w: i for i, w in enumerate(["<bos>", "<pad>", "<unk>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.save_pretrained(folder)
    tiny_hf_model("gpt2", seed=5).save_pretrained(folder)
    return folder


def test_text_file_on_a_local_model_folder(tmp_path, local_model, capsys):
    pairs = tmp_path / "text.jsonl"
    rows = [
        ("when mary and john went to the store , john gave a drink to", "mary", "john"),
        ("when anna and paul went to the store , paul gave a drink to", "anna", "paul"),
        ("when john and anna went , anna gave to", "john", "anna"),
    ]
    corrupt = {"mary": "anna", "john": "paul", "anna": "mary", "paul": "john"}
    lines = []
    for clean, a, w in rows:
        bad = " ".join(corrupt.get(t, t) for t in clean.split())
        lines.append(json.dumps({"clean": clean, "corrupted": bad, "answer": a, "wrong_answer": w}))
    pairs.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    argv = ["--tasks", str(pairs), "--model", str(local_model), "--methods", "eap"]
    assert run.main([*argv, "--seeds", "1", "--inline", "--no-plots", "--out", str(out)]) == 0
    (rec,) = read_records(out)
    assert rec.ok and rec.n == 2 and rec.task == "file-text" and "no ground truth" in rec.note
    assert math.isfinite(rec.cpr) and rec.metric_clean != rec.metric_ablated

    two = tmp_path / "two.jsonl"  # "a drink" is two tokens of this tokenizer
    two.write_text(
        json.dumps(
            {
                "clean": "when mary",
                "corrupted": "when anna",
                "answer": "a drink",
                "wrong_answer": "john",
            }
        )
        + "\n"
    )
    code = run.main(
        [
            "--tasks",
            str(two),
            "--model",
            str(local_model),
            "--methods",
            "eap",
            "--no-plots",
            "--out",
            str(tmp_path / "o2"),
        ]
    )
    assert code == 2 and f"{two}:1: answer 'a drink' is 2 tokens" in capsys.readouterr().err
