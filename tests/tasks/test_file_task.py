"""Prompt-pair tasks from files: readers (every format, every error naming file and line),
tokenisation checks, padding into TaskData, the metrics by name, ground-truth files, the
registry's factories, and the shipped induction example's metric (golden values)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from core.registry import Registry
from eval.formats.mib import write_mib
from patching.graph import EdgeGraph
from tasks.base import Task, TaskData, get_task
from tasks.file_task import (
    FileTaskError,
    FileTaskSpec,
    build_data,
    encode,
    expand_task_files,
    register_file_task,
)
from tasks.pair_metrics import PAIR_METRICS, get_pair_metric, logit_diff, logprob, neg_kl
from tasks.readers import PairFileError, read_pairs, read_truth
from tests.files import EXAMPLE, GPT2_EXAMPLE, ROOT, TRUTH

pytestmark = pytest.mark.usefixtures("restore_tasks")


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


class WordTokenizer:
    """A stand-in tokenizer: one token per whitespace-separated word (ids from a table)."""

    bos_token_id, pad_token_id, eos_token_id = 0, None, 1

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        ids = [self.vocab.setdefault(w, 2 + len(self.vocab)) for w in text.split()]
        return {"input_ids": ids}

    def __len__(self) -> int:
        return 100


# ----- readers ----------------------------------------------------------------------------------
def test_csv_text_and_ids(tmp_path):
    text = write(tmp_path, "t.csv", "clean,corrupted,answer,wrong_answer\na b c,d e f, x, y\n")
    pf = read_pairs(text)
    assert (pf.format, pf.ids, pf.has_wrong) == ("pairs", False, True)
    assert pf.rows[0].clean == "a b c" and pf.rows[0].answers == (" x",)
    ids = write(tmp_path, "i.csv", "clean,corrupted,answer\n0 5 6,0 7 8,9\n")
    pf = read_pairs(ids)
    assert pf.ids and pf.rows[0].clean == (0, 5, 6) and pf.rows[0].answers == (9,)
    assert not pf.has_wrong and pf.rows[0].line == 2


def test_jsonl_and_autocircuit_and_eapig(tmp_path):
    jl = write(
        tmp_path,
        "p.jsonl",
        '{"clean": [0, 1, 2], "corrupted": [0, 3, 4], "answer": 5, "wrong_answer": 6}\n\n'
        '{"clean": [0, 1], "corrupted": [0, 3], "answers": [5, 7], "wrong_answers": [6]}\n',
    )
    pf = read_pairs(jl)
    assert pf.ids and [r.line for r in pf.rows] == [1, 3] and pf.rows[1].answers == (5, 7)
    ac = {"prompts": [{"clean": "a b", "corrupt": "c d", "answers": [" x"], "wrong_answers": []}]}
    pf = read_pairs(write(tmp_path, "ac.json", json.dumps(ac)))
    assert pf.format == "auto-circuit" and pf.rows[0].corrupted == "c d"
    eap = write(tmp_path, "e.csv", 'clean,corrupted,label\na b,c d,7\na b,c d,"[7, 8]"\n')
    pf = read_pairs(eap)
    assert pf.format == "eap-ig" and pf.rows[0].answers == (7,) and pf.rows[1].wrongs == (8,)


@pytest.mark.parametrize(
    "name, text, where, problem",
    [
        ("a.csv", "clean,corrupted\nx,y\n", ":1:", "missing column(s) answer"),
        ("b.csv", "clean,corrupted,answer\nx,y,z\n,y,z\n", ":3:", "clean is empty"),
        ("c.csv", "clean,corrupted,answer\n0 1,0 2,3 4\n", ":2:", "is 2 tokens"),
        ("d.csv", "clean,corrupted,label\na,b,foo\n", ":2:", "not a token id"),
        ("e.jsonl", '{"clean": "a", "corrupted": "b", "answer": "c"}\n{oops\n', ":2:", "not JSON"),
        ("f.jsonl", '{"clean": "a", "answer": "c"}\n', ":1:", "missing key 'corrupted'"),
        ("g.json", '{"prompts": [{"clean": "a", "corrupt": "b"}]}', ":prompts[0]:", "'answers'"),
        ("h.txt", "whatever", "h.txt:", "unknown file type"),
        ("i.csv", "clean,corrupted,answer\n", "i.csv:", "no prompt pairs"),
    ],
)
def test_bad_files_name_file_line_and_problem(tmp_path, name, text, where, problem):
    path = write(tmp_path, name, text)
    with pytest.raises(PairFileError) as err:
        read_pairs(path)
    assert str(path) in str(err.value) and where in str(err.value)
    assert problem in str(err.value)


# ----- tokenisation and data --------------------------------------------------------------------
def test_encode_checks_lengths_single_tokens_and_vocab(tmp_path):
    tok = WordTokenizer()
    ok = read_pairs(write(tmp_path, "ok.csv", "clean,corrupted,answer,wrong_answer\na b,c d,x,y\n"))
    enc = encode(ok, tok, len(tok), needs_wrong=True)
    assert enc.clean[0][0] == 0 and len(enc.clean[0]) == 3  # BOS prepended
    cases = {
        "clean,corrupted,answer,wrong_answer\na b,c d e,x,y\n": ("clean is 3 tokens", ":2:"),
        "clean,corrupted,answer,wrong_answer\na b,c d,x y,z\n": ("is 2 tokens", ":2:"),
        "clean,corrupted,answer\na b,c d,x\n": ("no wrong answer", ":2:"),
    }
    for i, (text, (problem, where)) in enumerate(cases.items()):
        pf = read_pairs(write(tmp_path, f"bad{i}.csv", text))
        with pytest.raises(PairFileError, match=problem) as err:
            encode(pf, WordTokenizer(), 100, needs_wrong=True)
        assert where in str(err.value)
    ids = read_pairs(write(tmp_path, "ids.csv", "clean,corrupted,answer\n0 70,0 71,3\n"))
    with pytest.raises(PairFileError, match="token id 70 is outside"):
        encode(ids, None, 64, needs_wrong=False)
    with pytest.raises(PairFileError, match="no tokenizer"):
        encode(ok, None, 64, needs_wrong=False)


def test_build_data_pads_right_and_reads_the_last_real_token(tmp_path):
    pf = read_pairs(
        write(
            tmp_path,
            "p.csv",
            "clean,corrupted,answer,wrong_answer\n0 5 6,0 7 8,9,10\n0 5 6 7 8,0 1 2 3 4,11,12\n",
        )
    )
    data = build_data(encode(pf, None, 64, True), [0, 1])
    assert data.clean.tolist() == [[0, 5, 6, 0, 0], [0, 5, 6, 7, 8]]
    assert data.attention_mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert data.extra["answer_pos"].tolist() == [2, 4]
    assert data.answers[0, 2] == 9 and data.wrong[1, 4] == 12 and data.answer_mask.sum() == 2
    same = build_data(encode(pf, None, 64, True), [1])
    assert same.attention_mask is None  # one length: no padding


# ----- metrics ----------------------------------------------------------------------------------
def _toy() -> tuple[torch.Tensor, TaskData]:
    logits = torch.zeros(2, 3, 4)  # [n, pos, vocab]
    logits[0, 1] = torch.tensor([1.0, 3.0, 0.0, 2.0])
    logits[1, 2] = torch.tensor([0.0, 0.0, 4.0, 1.0])
    tokens = torch.zeros(2, 3, dtype=torch.long)
    mask = torch.zeros(2, 3, dtype=torch.bool)
    mask[0, 1] = mask[1, 2] = True
    extra = {
        "answer_pos": torch.tensor([1, 2]),
        "answer_set": torch.tensor([[1, -1], [2, 3]]),
        "wrong_set": torch.tensor([[3], [0]]),
    }
    return logits, TaskData(tokens, tokens, mask, tokens, extra=extra)


def test_pair_metrics_values():
    logits, data = _toy()
    torch.testing.assert_close(logit_diff(logits, data), torch.tensor([1.0, 2.5]))
    lp = torch.log_softmax(torch.tensor([1.0, 3.0, 0.0, 2.0]), -1)[1]
    assert logprob(logits, data)[0].item() == pytest.approx(lp.item(), abs=1e-6)
    data.extra["clean_logp"] = torch.log_softmax(logits[[0, 1], [1, 2]], -1)
    torch.testing.assert_close(neg_kl(logits, data), torch.zeros(2), atol=1e-6, rtol=0)
    shifted = logits.clone()
    shifted[0, 1, 0] += 2.0
    assert neg_kl(shifted, data)[0] < -0.05 and abs(neg_kl(shifted, data)[1]) < 1e-6
    assert neg_kl(logits[None].expand(3, -1, -1, -1), data).shape == (3, 2)  # [k, n]
    with pytest.raises(ValueError, match="Did you mean logprob"):
        get_pair_metric("logprobs")
    assert sorted(PAIR_METRICS) == ["kl", "logit-diff", "logprob"]


# ----- ground truth -----------------------------------------------------------------------------
def test_truth_files(tmp_path):
    assert len(read_truth(TRUTH)) == 27
    bad = write(tmp_path, "t.txt", "# comment\nembed->logits\nnot an edge\n")
    with pytest.raises(PairFileError, match=r"t\.txt:3: bad edge name"):
        read_truth(bad)
    outside = write(tmp_path, "o.txt", "a7.h0->logits\n")
    spec = FileTaskSpec(str(EXAMPLE), "induction", truth=str(outside))
    with pytest.raises(FileTaskError, match=r"o\.txt: 1 edge\(s\) not in induction's graph"):
        register_file_task(spec)


def test_mib_truth_is_the_files_in_graph_edges(tmp_path):
    graph = EdgeGraph(n_layers=1, n_heads=2, has_mlp=True, parallel=False)
    keep = {"embed->a0.h1.v", "a0.h1->m0", "m0->logits"}
    path = write_mib(tmp_path / "c.json", graph, 8, torch.zeros(graph.n_edges).numpy(), keep)
    assert read_truth(path) == keep
    empty = write_mib(tmp_path / "e.json", graph, 8, torch.zeros(graph.n_edges).numpy(), set())
    with pytest.raises(PairFileError, match="no edge of the MIB circuit file is marked"):
        read_truth(empty)
    with pytest.raises(PairFileError, match="not a readable MIB circuit file"):
        read_truth(write(tmp_path, "b.json", "{}"))


# ----- registry and the task ---------------------------------------------------------------------
def test_registry_add_factory():
    reg: Registry[Task] = Registry("thing", Task)
    made = []
    reg.add("x", lambda: made.append(1) or "instance")
    assert reg.get("x")() == "instance" and made == [1] and "x" in reg
    with pytest.raises(ValueError, match="already registered"):
        reg.add("x", lambda: None)
    with pytest.raises(TypeError, match="callable"):
        reg.add("y", 3)


def test_induction_example_task_golden_metric():
    key = register_file_task(FileTaskSpec(str(EXAMPLE), "induction", truth=str(TRUTH)))
    assert key == "file-induction_pairs"
    task = get_task(key)
    assert task.has_ground_truth and task.max_examples == 40
    # a third of the rows is held out (tasks.splits.pool_split): 27 train, 13 held out
    assert (task.max_train(), task.n_heldout(), task.n_default()) == (27, 13, 27)
    with pytest.raises(ValueError, match="held out"):
        task.make_data(28, 0)
    from patching import PatchableModel
    from tasks.problem import Problem

    data, held = task.make_data(27, 0), task.make_heldout()
    assert data.attention_mask is not None  # the example mixes lengths
    rows = {tuple(r.tolist()) for r in data.clean} | {tuple(r.tolist()) for r in held.clean}
    assert len(rows) == 40  # the splits are disjoint and together the whole file
    model = PatchableModel(task.load_model("cpu"))
    train, test = (Problem.from_task(task, model, d, "resample") for d in (data, held))
    # measured on the shipped model over all 40 rows (scripts/make_examples.py): induction works
    # on the clean prompts and nothing is predictable on the fully ablated (corrupted) model
    mean = lambda attr: (27 * getattr(train, attr) + 13 * getattr(test, attr)) / 40  # noqa: E731
    assert mean("metric_clean") == pytest.approx(9.492, abs=0.01)
    assert mean("metric_ablated") == pytest.approx(-0.217, abs=0.01)
    assert len(task.ground_truth(model.graph)) == 27


def test_task_without_truth_is_faithfulness_only():
    task = get_task(register_file_task(FileTaskSpec(str(EXAMPLE), "induction", "logprob")))
    assert not task.has_ground_truth and "faithfulness only" in task.no_truth_note
    with pytest.raises(ValueError, match="no ground truth"):
        task._ground_truth(None, "resample")


def test_expand_task_files_needs_model_and_a_file():
    with pytest.raises(FileTaskError, match="--model"):
        expand_task_files(str(EXAMPLE), None, None, None)
    with pytest.raises(FileTaskError, match="--metric"):
        expand_task_files("induction", None, "kl", None)
    keys, specs = expand_task_files(f"induction,{EXAMPLE}", "induction", None, None)
    assert keys == "induction,file-induction_pairs"
    assert specs["file-induction_pairs"]["metric"] == "logit-diff"


def test_gpt2_text_example():
    """The text example on GPT-2: runs where GPT-2 can be loaded (hub or cache)."""
    from models import resolve

    reason = resolve("gpt2").unavailable_reason()
    if reason is not None:
        pytest.skip(f"gpt2 unavailable here: {reason}")
    task = get_task(register_file_task(FileTaskSpec(str(GPT2_EXAMPLE), "gpt2")))
    from patching import PatchableModel
    from tasks.problem import Problem

    data = task.make_data(8, 0)
    problem = Problem.from_task(task, PatchableModel(task.load_model("cpu")), data, "resample")
    assert math.isfinite(problem.metric_clean) and problem.metric_clean > problem.metric_ablated


def test_examples_are_what_the_script_writes(tmp_path):
    from scripts.make_examples import main

    assert main(["--out", str(tmp_path)]) == 0
    for name in ("induction_pairs.csv", "gpt2_ioi_pairs.csv", "induction_truth.txt"):
        assert (tmp_path / name).read_text() == (ROOT / "examples" / name).read_text(), name
