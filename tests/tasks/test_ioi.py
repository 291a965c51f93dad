"""The ioi task: prompts (with a word-level tokenizer built here), metric, ground truth, and
the offline behaviour of its GPT-2 loading."""

from __future__ import annotations

import re
import time

import pytest
import torch

from models import hub
from patching.graph import EdgeGraph, GraphConfig
from tasks import get_task
from tasks.ioi import IOITask
from tasks.ioi.circuit import HEAD_CLASSES
from tasks.ioi.prompts import (
    BABA_TEMPLATES,
    NAMES,
    OBJECTS,
    PLACES,
    POSITION_KEYS,
    abba,
    single_token_ids,
    template_text,
)

BOS = "<|endoftext|>"


@pytest.fixture(scope="module")
def word_tokenizer():
    """A word-level Hugging Face tokenizer over every word and punctuation mark IOI uses."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    text = " ".join([*BABA_TEMPLATES, *NAMES, *PLACES, *OBJECTS])
    words = sorted(set(re.findall(r"\w+|[^\w\s{}]+", text)))
    vocab = {w: i for i, w in enumerate([BOS, *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=BOS))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS)


@pytest.fixture(scope="module")
def task(word_tokenizer):
    return IOITask(tokenizer=word_tokenizer)


@pytest.fixture(scope="module")
def data(task):
    return task.make_data(64, seed=0)


def _word(tokenizer, token: int) -> str:
    return tokenizer.convert_ids_to_tokens(int(token))


def _positions(data, i):
    return {k: int(data.extra[k][i]) for k in POSITION_KEYS}


# ----- prompts ------------------------------------------------------------------------------
def test_registered():
    assert isinstance(get_task("ioi"), IOITask)


def test_abba_swaps_the_first_two_names():
    want = "Then, {IO} and {S} went to the {PLACE}. {S} gave a {OBJECT} to"
    assert abba(BABA_TEMPLATES[0]) == want
    assert template_text(0, "BABA") == BABA_TEMPLATES[0]
    with pytest.raises(ValueError, match="order"):
        template_text(0, "ABC")


def test_batch_layout_and_answers(data):
    n, length = data.clean.shape
    assert data.corrupted.shape == (n, length) and data.n == 64
    assert data.answer_mask[:, -1].all() and not data.answer_mask[:, :-1].any()
    assert (data.answers[:, :-1] == 0).all() and (data.wrong[:, :-1] == 0).all()
    for key in (*POSITION_KEYS, "template", "baba"):
        assert data.extra[key].shape == (n,) and data.extra[key].dtype == torch.long
    assert (data.extra["end_pos"] == length - 1).all()


def test_positions_hold_the_names(task, data):
    tok = task.tokenizer
    for i in range(data.n):
        p = _positions(data, i)
        row = data.clean[i]
        io, s = data.answers[i, -1], data.wrong[i, -1]
        assert io != s
        assert row[p["io_pos"]] == io
        assert row[p["s1_pos"]] == s and row[p["s2_pos"]] == s
        assert p["s1_plus1_pos"] == p["s1_pos"] + 1
        assert max(p["io_pos"], p["s1_pos"]) < p["s2_pos"] < p["end_pos"]
        baba = bool(data.extra["baba"][i])
        assert (p["s1_pos"] < p["io_pos"]) == baba
        assert _word(tok, io) in NAMES and _word(tok, s) in NAMES
        assert _word(tok, row[p["end_pos"]]) == "to"
        assert (row == io).sum() == 1 and (row == s).sum() == 2


def test_tokens_equal_whole_sentence_tokenization(task, data):
    tok = task.tokenizer
    vocab = task.vocabulary
    for i in range(0, data.n, 7):
        t, order = int(data.extra["template"][i]), "BABA" if data.extra["baba"][i] else "ABBA"
        layout = vocab.layouts[(t, order)]
        row = data.clean[i]
        words = {"IO": _word(tok, data.answers[i, -1]), "S": _word(tok, data.wrong[i, -1])}
        for slot in ("PLACE", "OBJECT"):
            if slot in layout.pieces:
                words[slot] = _word(tok, row[layout.position(slot)])
        text = template_text(t, order).format(**words)
        assert tok.encode(text, add_special_tokens=False) == row.tolist()


def test_both_orders_present_and_balanced(task, data):
    baba = data.extra["baba"]
    assert abs(int(baba.sum()) * 2 - data.n) <= 1
    two = task.make_data(2, seed=5).extra["baba"]
    assert sorted(two.tolist()) == [0, 1]


def test_abc_corruption_keeps_positions_and_length(task, data):
    tok = task.tokenizer
    assert data.corrupted.shape == data.clean.shape
    for i in range(data.n):
        p = _positions(data, i)
        slots = [p["io_pos"], p["s1_pos"], p["s2_pos"]]
        other = torch.ones(data.clean.shape[1], dtype=torch.bool)
        other[slots] = False
        assert torch.equal(data.clean[i, other], data.corrupted[i, other])
        new = data.corrupted[i, slots].tolist()
        clean_names = {int(data.answers[i, -1]), int(data.wrong[i, -1])}
        assert len(set(new)) == 3 and not set(new) & clean_names
        assert all(_word(tok, t) in NAMES for t in new)


def test_deterministic_per_seed(task):
    a, b, c = task.make_data(16, seed=3), task.make_data(16, seed=3), task.make_data(16, seed=4)
    assert torch.equal(a.clean, b.clean) and torch.equal(a.corrupted, b.corrupted)
    assert all(torch.equal(a.extra[k], b.extra[k]) for k in a.extra)
    assert not torch.equal(a.clean, c.clean)


def test_one_template_length_per_batch(task, word_tokenizer):
    vocab = task.vocabulary
    lengths = {len(vocab.layouts[(t, o)]) for t in vocab.templates for o in ("ABBA", "BABA")}
    assert lengths == {task.make_data(8).clean.shape[1]}
    assert len(vocab.templates) >= 2
    assert set(task.make_data(200, seed=1).extra["template"].tolist()) == set(vocab.templates)
    # Explicit templates: one length is required.
    assert IOITask(word_tokenizer, templates=(0,)).make_data(4).extra["template"].eq(0).all()
    by_len = {}
    for t in range(len(BABA_TEMPLATES)):
        by_len.setdefault(len(vocab.layouts[(t, "BABA")]), []).append(t)
    a, b = (ts[0] for ts in list(by_len.values())[:2])
    with pytest.raises(ValueError, match="one length"):
        IOITask(word_tokenizer, templates=(a, b)).make_data(4)


def test_prepend_bos(word_tokenizer):
    plain = IOITask(word_tokenizer, templates=(0,)).make_data(4, seed=2)
    bos = IOITask(word_tokenizer, templates=(0,), prepend_bos=True).make_data(4, seed=2)
    assert (bos.clean[:, 0] == word_tokenizer.bos_token_id).all()
    assert torch.equal(bos.clean[:, 1:], plain.clean)
    assert torch.equal(bos.extra["io_pos"], plain.extra["io_pos"] + 1)


def test_single_token_filter(word_tokenizer):
    ids = single_token_ids(word_tokenizer, ("Mary", "Anne-Marie", "John"))
    assert set(ids) == {"Mary", "John"}


@pytest.mark.parametrize("n", [0, -3, 2.0, "4"])
def test_bad_n(task, n):
    with pytest.raises(ValueError, match="n must be a positive int"):
        task.make_data(n)


def test_too_many_examples(task):
    with pytest.raises(ValueError, match="at most"):
        task.make_data(IOITask.max_examples + 1)


@pytest.mark.parametrize("templates", [(), (99,), (-1,), ("0",)])
def test_bad_templates(templates):
    with pytest.raises(ValueError, match="templates"):
        IOITask(templates=templates)


# ----- metric --------------------------------------------------------------------------------
def test_metric_is_io_minus_s_at_last_position(task, data):
    n, length = data.clean.shape
    vocab = int(data.clean.max()) + 1
    logits = torch.randn(2, n, length, vocab)
    got = task.metric(logits, data)
    idx = torch.arange(n)
    want = logits[:, idx, -1, data.answers[:, -1]] - logits[:, idx, -1, data.wrong[:, -1]]
    assert got.shape == (2, n)
    torch.testing.assert_close(got, want)
    # Making S more likely than IO flips the sign.
    logits[:, idx, -1, data.wrong[:, -1]] = logits.max() + 1
    assert (task.metric(logits, data) < 0).all()


# ----- ground truth --------------------------------------------------------------------------
def _layer(node: str) -> int:
    return int(re.match(r"[am](\d+)", node).group(1))


def _downstream(src: str, dst: str) -> bool:
    """Independent reading of the graph's rule: a head feeds its own layer's MLP."""
    if src == "embed" or dst == "logits":
        return True
    s, d = _layer(src), _layer(dst)
    if src.startswith("a") and dst.startswith("m"):
        return s <= d
    return s < d


@pytest.fixture(scope="module")
def gpt2_graph():
    return EdgeGraph(12, 12, True, GraphConfig())


@pytest.fixture(scope="module")
def gt(gpt2_graph):
    return IOITask().ground_truth(gpt2_graph)


def test_ground_truth_size(gt):
    assert len(gt) == 615


@pytest.mark.parametrize(
    ("config", "size"),
    [
        (GraphConfig(split_qkv=False), 409),
        (GraphConfig(include_mlp=False), 183),
        (GraphConfig(split_qkv=False, include_mlp=False), 124),
    ],
)
def test_ground_truth_size_other_graphs(config, size):
    graph = EdgeGraph(12, 12, True, config)
    truth = IOITask().ground_truth(graph)
    assert len(truth) == size
    assert truth <= set(graph.edge_names)
    if not config.include_mlp:
        assert not any(re.search(r"(^|>)m\d", e) for e in truth)


def test_ground_truth_edges_are_graph_edges_and_downstream(gt, gpt2_graph):
    assert gt <= set(gpt2_graph.edge_names)
    for e in gt:
        src, dst = e.split("->")
        assert _downstream(src, dst.rsplit(".", 1)[0] if dst.count(".") == 2 else dst), e


def test_ground_truth_covers_the_26_heads(gt):
    heads = {f"a{layer}.h{h}" for hs in HEAD_CLASSES.values() for layer, h in hs}
    assert len(heads) == 26
    touched = {n.rsplit(".", 1)[0] if n.count(".") == 2 else n for e in gt for n in e.split("->")}
    assert {n for n in touched if n.startswith("a")} == heads


@pytest.mark.parametrize(
    "edge",
    [
        "embed->a0.h1.q",  # input -> duplicate token (q, k, v)
        "m1->a2.h2.v",  # input (MLP) -> previous token
        "m6->a7.h3.q",  # input -> S-inhibition query
        "embed->a10.h7.k",  # input -> negative name mover key
        "m10->a11.h2.v",
        "a2.h2->a5.h5.k",  # previous token -> induction
        "a6.h9->a8.h10.v",  # induction -> S-inhibition
        "a0.h10->a7.h3.v",  # duplicate token -> S-inhibition
        "a8.h6->a9.h9.q",  # S-inhibition -> name mover
        "a9.h9->logits",
        "a9.h9->m9",  # a head feeds its own layer's MLP
        "a11.h10->m11",
        "embed->m0",
        "m0->m11",
        "m3->logits",
        "embed->logits",
    ],
)
def test_ground_truth_contains(gt, edge):
    assert edge in gt


@pytest.mark.parametrize(
    "edge",
    [
        "embed->a7.h3.k",  # S-inhibition k/v come from induction/duplicate heads only
        "embed->a5.h5.q",  # induction heads read only previous-token heads
        "a2.h2->a5.h5.q",  # previous token -> induction is k, v
        "a0.h1->a5.h5.k",  # duplicate token -> induction is not an edge of the circuit
        "a7.h3->a9.h9.k",  # S-inhibition -> movers is q only
        "a9.h9->a10.h0.q",
        "a5.h5->logits",
        "a7.h3->logits",
        "a9.h9->m8",  # upstream, not an edge of the graph
        "a1.h1->a9.h9.q",  # a head outside the circuit
        "a1.h1->m5",
    ],
)
def test_ground_truth_excludes(gt, edge):
    assert edge not in gt


def test_ground_truth_without_split_is_union_of_roles(gt):
    flat = IOITask().ground_truth(EdgeGraph(12, 12, True, GraphConfig(split_qkv=False)))
    merged = {re.sub(r"(->a\d+\.h\d+)\.[qkv]$", r"\1", e) for e in gt}
    assert flat == merged


def test_ground_truth_rejects_other_graphs():
    task = IOITask()
    with pytest.raises(ValueError, match="per-position"):
        task.ground_truth(EdgeGraph(12, 12, True, GraphConfig(positions=15)))
    with pytest.raises(ValueError, match="GPT-2 small"):
        task.ground_truth(EdgeGraph(2, 4, True, GraphConfig()))
    with pytest.raises(ValueError, match="ablations"):
        task.ground_truth(EdgeGraph(12, 12, True, GraphConfig()), ablation="zero")


# ----- per-position ground truth -------------------------------------------------------------
def _collapse(names: set[str]) -> set[str]:
    return {e.rsplit("@", 1)[0] for e in names}


def _pos_of(name: str) -> int:
    return int(name.rsplit("@", 1)[1])


@pytest.fixture(scope="module", params=["ABBA", "BABA"])
def aligned(request, word_tokenizer):
    return IOITask(tokenizer=word_tokenizer, order=request.param)


@pytest.fixture(scope="module")
def aligned_graph(aligned):
    return EdgeGraph(12, 12, True, GraphConfig(positions=aligned.vocabulary.length))


@pytest.fixture(scope="module")
def pos_gt(aligned, aligned_graph):
    return aligned.ground_truth(aligned_graph)


def test_aligned_batches_share_positions(aligned):
    data = aligned.make_data(64, seed=0)
    roles = aligned.role_positions
    assert set(roles) == set(POSITION_KEYS) and roles["end_pos"] == data.clean.shape[1] - 1
    for key in POSITION_KEYS:
        assert (data.extra[key] == roles[key]).all(), key
    assert (data.extra["baba"] == int(aligned.order == "BABA")).all()
    assert set(data.extra["template"].tolist()) == set(aligned.vocabulary.templates)
    assert aligned.vocabulary.orders == (aligned.order,)
    for i in range(data.n):  # the roles hold the names
        row, io, s = data.clean[i], data.answers[i, -1], data.wrong[i, -1]
        assert row[roles["io_pos"]] == io
        assert row[roles["s1_pos"]] == s and row[roles["s2_pos"]] == s
    assert roles["s1_plus1_pos"] == roles["s1_pos"] + 1
    assert (roles["s1_pos"] < roles["io_pos"]) == (aligned.order == "BABA")


def test_aligned_word_level_positions(word_tokenizer):
    """Pinned for the test tokenizer: templates 8 and 9 ("While ... were working at / commuting
    to the ...") share every role position in both orders."""
    abba = IOITask(word_tokenizer, order="ABBA")
    baba = IOITask(word_tokenizer, order="BABA")
    assert abba.vocabulary.templates == baba.vocabulary.templates == (8, 9)
    want = dict(zip(POSITION_KEYS, (1, 3, 4, 10, 14), strict=True))
    assert abba.role_positions == want
    assert baba.role_positions == {**want, "io_pos": 3, "s1_pos": 1, "s1_plus1_pos": 2}


def test_aligned_explicit_templates(word_tokenizer):
    one = IOITask(word_tokenizer, templates=(0,), order="BABA")
    assert one.make_data(4).extra["template"].eq(0).all() and one.role_positions["io_pos"] == 4
    # Templates 0 and 8 tokenize to one length but hold the names at other positions.
    assert IOITask(word_tokenizer, templates=(0, 8)).make_data(4).clean.shape[1] == 15
    with pytest.raises(ValueError, match="share every role position"):
        IOITask(word_tokenizer, templates=(0, 8), order="ABBA").make_data(4)


@pytest.mark.parametrize("order", ["AB", "abba", ""])
def test_bad_order(order):
    with pytest.raises(ValueError, match="order"):
        IOITask(order=order)


def test_default_order_unchanged(word_tokenizer, data):
    """order=None keeps the mixed batches (and their seeds) of before."""
    assert IOITask(word_tokenizer).role_positions is None
    assert set(data.extra["baba"].tolist()) == {0, 1}
    assert torch.equal(IOITask(word_tokenizer, order=None).make_data(64, seed=0).clean, data.clean)


def test_per_position_ground_truth_size(aligned, pos_gt, aligned_graph):
    assert aligned.per_position
    assert len(pos_gt) == 1495
    assert pos_gt <= set(aligned_graph.edge_names)


def test_per_position_collapses_to_position_free(pos_gt, gt):
    assert _collapse(pos_gt) <= gt
    assert _collapse(pos_gt) == gt  # every edge of the circuit counts at some role position


def test_per_position_only_at_role_positions(aligned, pos_gt):
    roles = aligned.role_positions
    assert {_pos_of(e) for e in pos_gt} == set(roles.values())
    assert len(set(roles.values())) == len(roles)


@pytest.mark.parametrize(
    ("edge", "role"),
    [
        ("embed->a2.h2.q", "s1_plus1_pos"),  # previous token: query at S1+1
        ("embed->a2.h2.k", "s1_pos"),  # ... keys and values at S1
        ("m1->a4.h11.v", "s1_pos"),
        ("embed->a0.h1.q", "s2_pos"),  # duplicate token: query at S2
        ("embed->a3.h0.k", "s1_pos"),  # ... keys and values at S1
        ("a2.h2->a5.h5.k", "s1_plus1_pos"),  # previous token -> induction k/v at S1+1
        ("a4.h11->a6.h9.v", "s1_plus1_pos"),
        ("a5.h5->a7.h3.k", "s2_pos"),  # induction -> S-inhibition k/v at S2
        ("a0.h10->a8.h6.v", "s2_pos"),  # duplicate token -> S-inhibition k/v at S2
        ("m6->a7.h3.q", "end_pos"),  # S-inhibition query at END
        ("a8.h6->a9.h9.q", "end_pos"),  # S-inhibition -> name mover query at END
        ("a7.h9->a11.h10.q", "end_pos"),  # ... and negative name mover
        ("embed->a9.h9.k", "io_pos"),  # name movers: keys/values at IO, S1, S2
        ("embed->a9.h9.k", "s1_pos"),
        ("embed->a9.h9.k", "s2_pos"),
        ("m8->a10.h7.v", "io_pos"),  # negative name mover
        ("m9->a10.h10.v", "s2_pos"),  # backup name mover
        ("a9.h9->logits", "end_pos"),  # outputs at END
        ("a11.h10->m11", "end_pos"),
        ("m3->logits", "end_pos"),
        ("embed->logits", "end_pos"),
        ("embed->m0", "io_pos"),  # unpruned MLPs, at every role position
        ("m0->m11", "s1_plus1_pos"),
    ],
)
def test_per_position_contains(aligned, pos_gt, edge, role):
    assert f"{edge}@{aligned.role_positions[role]}" in pos_gt


@pytest.mark.parametrize(
    ("edge", "role"),
    [
        ("embed->a2.h2.q", "s1_pos"),  # previous token query is at S1+1
        ("embed->a2.h2.k", "s1_plus1_pos"),
        ("embed->a0.h1.k", "s2_pos"),  # duplicate token keys at S1
        ("embed->a0.h1.q", "s1_pos"),
        ("a2.h2->a5.h5.k", "s1_pos"),  # induction keys at S1+1
        ("a2.h2->a5.h5.k", "s2_pos"),
        ("a5.h5->a7.h3.k", "end_pos"),  # S-inhibition keys at S2
        ("m6->a7.h3.q", "s2_pos"),  # S-inhibition query at END
        ("a8.h6->a9.h9.q", "io_pos"),  # name mover query at END
        ("embed->a9.h9.k", "end_pos"),  # name mover keys at the names
        ("embed->a9.h9.k", "s1_plus1_pos"),
        ("a9.h9->logits", "io_pos"),  # the metric reads END only
        ("m3->logits", "s2_pos"),
        ("a9.h9->m9", "s2_pos"),
    ],
)
def test_per_position_excludes(aligned, pos_gt, edge, role):
    assert f"{edge}@{aligned.role_positions[role]}" not in pos_gt


# Where each class writes: its query position (Wang et al.), stated here independently.
_WRITES = {
    "previous token": "s1_plus1_pos",
    "duplicate token": "s2_pos",
    "induction": "s2_pos",
    "s-inhibition": "end_pos",
    "name mover": "end_pos",
    "backup name mover": "end_pos",
    "negative name mover": "end_pos",
}


def test_head_edges_land_where_the_source_writes(aligned, pos_gt):
    cls = {f"a{layer}.h{h}": c for c, hs in HEAD_CLASSES.items() for layer, h in hs}
    head_edges = [e for e in pos_gt if e.startswith("a")]
    assert len(head_edges) == 124 + 40
    for e in head_edges:
        src = e.split("->")[0]
        assert _pos_of(e) == aligned.role_positions[_WRITES[cls[src]]], e


@pytest.mark.parametrize(
    ("config", "size"),
    [
        (dict(split_qkv=False), 1019),
        (dict(include_mlp=False), 235),
        (dict(split_qkv=False, include_mlp=False), 155),
    ],
)
def test_per_position_other_graphs(aligned, pos_gt, config, size):
    graph = EdgeGraph(12, 12, True, GraphConfig(positions=aligned.vocabulary.length, **config))
    truth = aligned.ground_truth(graph)
    assert len(truth) == size and truth <= set(graph.edge_names)
    flat = IOITask().ground_truth(EdgeGraph(12, 12, True, GraphConfig(**config)))
    assert _collapse(truth) == flat
    want = pos_gt
    if not config.get("split_qkv", True):  # a head's input: the union of its q/k/v positions
        want = {re.sub(r"(->a\d+\.h\d+)\.[qkv]@", r"\1@", e) for e in want}
    if not config.get("include_mlp", True):
        want = {e for e in want if not re.search(r"(^|>)m\d", e)}
    assert truth == want


def test_per_position_ground_truth_needs_no_batch(word_tokenizer, pos_gt, aligned):
    """The ground truth is fixed by the task's configuration, not by the last batch."""
    fresh = IOITask(tokenizer=word_tokenizer, order=aligned.order)
    graph = EdgeGraph(12, 12, True, GraphConfig(positions=fresh.vocabulary.length))
    before = fresh.ground_truth(graph)
    fresh.make_data(8, seed=3)
    assert before == fresh.ground_truth(graph) == pos_gt


def test_per_position_prepend_bos_shifts(word_tokenizer):
    plain = IOITask(word_tokenizer, order="ABBA")
    bos = IOITask(word_tokenizer, order="ABBA", prepend_bos=True)
    n = plain.vocabulary.length
    assert bos.role_positions == {k: p + 1 for k, p in plain.role_positions.items()}
    a = plain.ground_truth(EdgeGraph(12, 12, True, GraphConfig(positions=n)))
    b = bos.ground_truth(EdgeGraph(12, 12, True, GraphConfig(positions=n + 1)))
    assert {f"{e.rsplit('@', 1)[0]}@{_pos_of(e) + 1}" for e in a} == b


def test_per_position_check_graph(aligned, word_tokenizer):
    n = aligned.vocabulary.length
    aligned.check_graph(GraphConfig())
    aligned.check_graph(GraphConfig(positions=n))
    for wrong in (n - 1, n + 1, 1):
        with pytest.raises(ValueError, match=f"positions={n} .*not positions={wrong}"):
            aligned.check_graph(GraphConfig(positions=wrong))
        with pytest.raises(ValueError, match="per-position"):
            aligned.ground_truth(EdgeGraph(12, 12, True, GraphConfig(positions=wrong)))
    mixed = IOITask(word_tokenizer)
    mixed.check_graph(GraphConfig())
    with pytest.raises(ValueError, match="order='ABBA'.*positions=None"):
        mixed.check_graph(GraphConfig(positions=mixed.vocabulary.length))


def test_per_position_rejects_other_shapes(aligned):
    with pytest.raises(ValueError, match="GPT-2 small"):
        aligned.ground_truth(EdgeGraph(2, 4, True, GraphConfig(positions=15)))


def test_per_position_needs_roles():
    from tasks.ioi.circuit import ioi_ground_truth

    graph = EdgeGraph(12, 12, True, GraphConfig(positions=15))
    with pytest.raises(ValueError, match="role"):
        ioi_ground_truth(graph)
    roles = dict(zip(POSITION_KEYS, (1, 3, 4, 10, 15), strict=True))
    with pytest.raises(ValueError, match="outside"):
        ioi_ground_truth(graph, roles)


# ----- environment ----------------------------------------------------------------------------
def test_unavailable_reason_answers_quickly():
    start = time.perf_counter()
    reason = IOITask().unavailable_reason()
    assert time.perf_counter() - start < 5
    if hub.missing_from_cache("gpt2", hub.NEEDS) and not hub.hub_reachable():
        assert isinstance(reason, str) and "cache" in reason and "network" in reason


def test_unavailable_reason_offline_never_probes(monkeypatch):
    monkeypatch.setattr(hub, "_cached", lambda repo, f: False)
    monkeypatch.setattr(hub, "hub_reachable", pytest.fail)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reason = IOITask().unavailable_reason()
    assert "HF_HUB_OFFLINE" in reason and "weights" in reason and "tokenizer" in reason


def test_unavailable_reason_none_when_cached(monkeypatch):
    cached = {"config.json", "model.safetensors", "vocab.json", "merges.txt"}
    monkeypatch.setattr(hub, "_cached", lambda repo, f: f in cached)
    monkeypatch.setattr(hub, "hub_reachable", pytest.fail)
    assert IOITask().unavailable_reason() is None


def test_load_model_refuses_clearly_when_unavailable(monkeypatch):
    monkeypatch.setattr(IOITask, "unavailable_reason", lambda self: "no weights here")
    with pytest.raises(RuntimeError, match="no weights here"):
        IOITask().load_model()


def test_gpt2_tokenizer_loaded_lazily(monkeypatch, word_tokenizer):
    import transformers

    calls = []

    def fake(name, *args, **kwargs):
        calls.append(name)
        return word_tokenizer

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake)
    task = IOITask()
    assert calls == []
    task.make_data(4)
    task.make_data(4, seed=1)
    assert calls == ["gpt2"]


def _gpt2_tokenizer_cached() -> bool:
    return not hub.missing_from_cache("gpt2", hub.TOKENIZER)


@pytest.mark.skipif(not _gpt2_tokenizer_cached(), reason="GPT-2 tokenizer not in the HF cache")
def test_real_gpt2_tokenizer():
    task = IOITask()
    data = task.make_data(32, seed=0)
    tok = task.tokenizer
    assert len(tok) == 50257
    assert len(task.vocabulary.names) >= 90  # Wang et al.'s names are single GPT-2 tokens
    for i in range(data.n):
        row = data.clean[i].tolist()
        assert tok.encode(tok.decode(row), add_special_tokens=False) == row
        assert tok.decode(data.answers[i, -1]).strip() in NAMES


@pytest.mark.slow
def test_gpt2_prefers_the_indirect_object():
    task = IOITask()
    reason = task.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    model = task.load_model()
    data = task.make_data(32, seed=0)
    with torch.no_grad():
        clean = task.metric(model(data.clean), data).mean()
        corrupted = task.metric(model(data.corrupted), data).mean()
    assert clean > 1.0
    assert clean - corrupted > 1.0


def test_data_fits_the_patched_forward(task, data, word_tokenizer):
    """The batch runs through a tiny random model's patched forward: all-ones masks give the
    clean logits, all-zeros the corrupted ones, and the metric reads them."""
    from patching.hooked import HookedConfig, HookedModel
    from patching.patched import PatchableModel

    torch.manual_seed(0)
    cfg = HookedConfig(
        n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=32,
        d_vocab=len(word_tokenizer), act_fn="gelu_new", normalization_type="LN",
    )  # fmt: skip
    model = PatchableModel(HookedModel(cfg).eval())
    small = task.make_data(4, seed=0)
    ablation = model.ablate("resample", small.clean, small.corrupted)
    ones = torch.ones(model.graph.n_edges)
    with torch.no_grad():
        clean = model(small.clean, ones, ablation)
        corrupted = model(small.clean, torch.zeros_like(ones), ablation)
        torch.testing.assert_close(clean, model.model(small.clean), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(corrupted, model.model(small.corrupted), atol=1e-4, rtol=1e-4)
    assert task.metric(torch.stack([clean, corrupted]), small).shape == (2, 4)


# ----- other models (--model) ----------------------------------------------------------------
@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory, word_tokenizer):
    """A tiny random Llama saved with ``save_pretrained`` and the word-level tokenizer beside it:
    what ``IOITask(model=PATH)`` reads offline."""
    from models.random import tiny_hf_model

    path = tmp_path_factory.mktemp("tiny-llama")
    model = tiny_hf_model("llama", vocab_size=len(word_tokenizer), std=0.05)
    model.save_pretrained(path)
    word_tokenizer.save_pretrained(path)
    return str(path)


def test_other_model_builds_prompts_with_its_tokenizer(llama_dir, word_tokenizer):
    task = IOITask(model=llama_dir)
    assert task.unavailable_reason() is None
    assert task.prepend_bos  # a non-GPT-2 tokenizer with a BOS token gets one by default
    data = task.make_data(6, seed=0)
    assert (data.clean[:, 0] == word_tokenizer.bos_token_id).all()
    gpt2_style = IOITask(tokenizer=word_tokenizer).make_data(6, seed=0)
    assert torch.equal(data.clean[:, 1:], gpt2_style.clean)  # same prompts, BOS in front


def test_other_model_runs_faithfulness_only(llama_dir):
    from patching.graph import GraphOptions
    from tasks.problem import build_problem

    task = IOITask(model=llama_dir)
    assert not task.has_ground_truth and "GPT-2 small only" in task.no_truth_note
    assert IOITask().has_ground_truth and IOITask().no_truth_note is None
    problem = build_problem(task, GraphOptions(), n=4, seed=0, ablation="resample")
    # the loaded model is the saved one: all masks 1 reproduce its own logits
    model = hub.load(llama_dir)
    with torch.no_grad():
        want = model(problem.data.clean).logits
        got = problem.run(torch.ones(problem.n_edges))
    # only the position the metric reads (the last) is unembedded
    torch.testing.assert_close(got[:, -1], want[:, -1], atol=1e-4, rtol=1e-4)
    assert problem.metric_clean != problem.metric_ablated
    with pytest.raises(ValueError, match="GPT-2 small only"):
        task.ground_truth(problem.model.graph)


def test_other_model_unavailable_says_why(tmp_path):
    task = IOITask(model=str(tmp_path))  # a folder without config.json
    assert "config.json" in task.unavailable_reason()
    with pytest.raises(RuntimeError, match="config.json"):
        task.load_model()
    with pytest.raises(ValueError, match="hub name or a local path"):
        IOITask(model="")


def test_eval_run_ioi_on_another_model(llama_dir, tmp_path):
    """``eval.run --tasks ioi --model DIR`` runs ioi on that model, in a worker process that
    registers the configured task again, faithfulness-only with the note saying why."""
    import math

    from eval import run
    from eval.records import read_records
    from tasks.base import TASKS

    before = set(TASKS.keys())
    out = tmp_path / "run"
    argv = ["--tasks", "ioi", "--model", llama_dir, "--methods", "eap", "--seeds", "1",
            "--n", "8", "--device", "cpu", "--no-plots", "--out", str(out)]
    try:
        assert run.main(argv) == 0
    finally:
        for key in set(TASKS.keys()) - before:
            TASKS.unregister(key)
    (rec,) = read_records(out)
    assert rec.ok and rec.task.startswith("ioi@tiny-llama")
    assert math.isnan(rec.auc) and "GPT-2 small only" in rec.note
    assert rec.metric_clean != rec.metric_ablated


def test_eval_run_model_needs_a_task_that_takes_one(tmp_path, capsys):
    from eval import run

    argv = ["--tasks", "induction", "--model", "gpt2", "--methods", "eap", "--out",
            str(tmp_path / "run")]
    assert run.main(argv) == 2
    assert "takes a model" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
