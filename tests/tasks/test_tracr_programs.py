"""tracr-hist, tracr-sort-unique, tracr-pair-balance, tracr-shuffle-dyck: the shipped model
computes the program on inputs of every length it was compiled for, and every ground truth is a
faithful, minimal circuit under its ablation, on every graph option.

A categorical output counts as right only when the right token's logit beats every other by
``MARGIN`` (the compiled models give margins of about 1); a tie of the top logits is not the
program's output, even where argmax happens to break it the right way (see
``tasks/tracr_sort_unique.py``). A numeric output is right within ``TOL``.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from models.tracr import BOS
from patching.graph import EdgeGraph, GraphConfig
from patching.patched import PatchableModel
from tasks import get_task, tracr_base, tracr_programs
from tasks.problem import UnsupportedGraphError
from tasks.tracr_pair_balance import pair_balance
from tasks.tracr_shuffle_dyck import balanced
from tests.tasks.circuits import circuit_errors as shared_circuit_errors

KEYS = ["tracr-hist", "tracr-sort-unique", "tracr-pair-balance", "tracr-shuffle-dyck"]
TOL = 1e-3
MARGIN = 0.5
GRAPHS = {
    "qkv": GraphConfig(),
    "qkv-pos": GraphConfig(positions=5),
    "merged": GraphConfig(split_qkv=False),
    "merged-pos": GraphConfig(split_qkv=False, positions=5),
    "attn-only": GraphConfig(include_mlp=False),
}
# Edges the compiled weights connect that the zero-ablation ground truth leaves out (position-free,
# q/k/v split), each explained in the task's module docstring.
LEFT_OUT = {
    "tracr-hist": set(),
    "tracr-sort-unique": {"embed->a1.h0.k"},
    "tracr-pair-balance": set(),
    "tracr-shuffle-dyck": {
        "embed->a0.h0.q",
        "embed->a0.h0.k",
        "embed->a0.h0.v",
        "a0.h0->m0",
        "embed->a4.h0.q",
        "embed->a4.h1.q",
        "embed->a4.h1.k",
    },
}
# (zero, resample) ground-truth sizes, position-free and per position (q/k/v split, MLPs)
COUNTS = {
    "tracr-hist": {None: [6, 4], 5: [22, 16]},
    "tracr-sort-unique": {None: [9, 6], 5: [34, 24]},
    "tracr-pair-balance": {None: [10, 6], 5: [40, 24]},
    "tracr-shuffle-dyck": {None: [22, 12]},  # no per-position ground truth
}


def _program_output(key: str, seq: tuple) -> list:
    """What the RASP program outputs on ``seq`` (written out here, independently of the task)."""
    if key == "tracr-hist":
        return [seq.count(t) for t in seq]
    if key == "tracr-sort-unique":
        return sorted(seq)
    if key == "tracr-pair-balance":
        return pair_balance(seq)
    return [balanced(seq)] * len(seq)


def _cases():
    out = []
    for key in KEYS:
        for g, a in itertools.product(GRAPHS, ("zero", "resample")):
            if (key, g, a) in UNSUPPORTED or (key in POSITION_FREE and GRAPHS[g].positions):
                continue
            out.append(pytest.param(key, g, a, id=f"{key}-{g}-{a}"))
    return out


# graph options refused: under some ablation, no ground-truth edge is in the graph (every needed
# edge touches an MLP)
UNSUPPORTED = {
    (k, "attn-only", a)
    for k in ("tracr-pair-balance", "tracr-shuffle-dyck")
    for a in ("zero", "resample")
}
POSITION_FREE = {"tracr-shuffle-dyck"}  # tasks without a per-position ground truth


@pytest.fixture(scope="module", params=KEYS)
def key(request):
    return request.param


_cache: dict[str, tuple] = {}


def loaded(key: str):
    """(task, model, data over every input) for ``key``, built once per test session."""
    if key not in _cache:
        task = get_task(key)
        _cache[key] = (task, task.load_model(), task.all_data(seed=0))
    return _cache[key]


def output_error(task, logits, data) -> torch.Tensor:
    """Per mask: categorical, the number of answer positions whose right logit does not beat
    every other by MARGIN; numeric, the largest absolute error."""
    ans = data.answer_mask
    if task.meta["categorical_output"]:
        idx = data.answers.expand(logits.shape[:-1]).unsqueeze(-1)
        right = logits.gather(-1, idx)[..., 0]
        other = logits.scatter(-1, idx, float("-inf")).amax(-1)
        return ((right - other < MARGIN) & ans).flatten(-2).sum(-1).float()
    err = (logits[..., 0] - data.extra["target"]).abs() * ans
    return err.flatten(-2).amax(-1)


def circuit_errors(key, graph_name, ablation, drop_each=False):
    """Output error of the ground-truth circuit (and, with ``drop_each``, of the circuit minus
    each of its edges in turn), every other edge ablated (tests.tasks.circuits)."""
    task, model, data = loaded(key)
    return shared_circuit_errors(
        task, model, data, GRAPHS[graph_name], ablation, output_error, drop_each
    )


# ----- the task and its model --------------------------------------------------------------------
def test_task_interface_and_data(key):
    task, _, data = loaded(key)
    assert task.ablations == ("zero", "resample") and task.default_ablation == "zero"
    assert task.per_position == (key not in POSITION_FREE) and task.metric_description
    assert task.unavailable_reason() is None
    assert task.max_examples == len(task.inputs()) == len(set(task.inputs())) == data.n
    assert len({tuple(r) for r in data.clean.tolist()}) == data.n  # every input once
    assert (data.clean != data.corrupted).any(-1).all()
    assert {tuple(r) for r in data.corrupted.tolist()} <= {tuple(r) for r in data.clean.tolist()}
    assert (data.clean[:, 0] == task.meta["input_encoding"][BOS]).all()
    assert not data.answer_mask[:, 0].any() and data.answer_mask[:, 1:].all()


def test_sort_unique_inputs_are_distinct_tokens():
    task, _, _ = loaded("tracr-sort-unique")
    assert all(len(set(s)) == 4 for s in task.inputs()) and len(task.inputs()) == 120


@pytest.mark.parametrize("length", [1, 2, 3, 4])
def test_model_computes_the_program_at_every_length(key, length):
    """Every input of ``length`` tokens (up to the compiled max_seq_len): the model's decoded
    output is the program's, position by position. Plain model calls, any length."""
    task, model, _ = loaded(key)
    vocab = tracr_programs.PROGRAMS[task.program].vocab
    if key == "tracr-sort-unique":
        seqs = list(itertools.permutations(vocab, length))
    else:
        seqs = list(itertools.product(vocab, repeat=length))
    enc = task.meta["input_encoding"]
    toks = torch.tensor([[enc[BOS]] + [enc[str(t)] for t in s] for s in seqs])
    with torch.no_grad():
        logits = model(toks)[:, 1:]
    want = [_program_output(key, s) for s in seqs]
    if task.meta["categorical_output"]:
        out = task.meta["output_encoding"]
        ids = torch.tensor([[out[str(v)] for v in row] for row in want])
        top2 = logits.topk(2, dim=-1).values
        assert torch.equal(logits.argmax(-1), ids)
        assert (top2[..., 0] - top2[..., 1]).min() > MARGIN
    else:
        torch.testing.assert_close(logits[..., 0], torch.tensor(want), atol=1e-5, rtol=0)


def test_targets_are_the_program_output(key):
    task, model, data = loaded(key)
    inv = {v: k for k, v in task.meta["input_encoding"].items()}
    seqs = [tuple(inv[t] for t in row[1:]) for row in data.clean.tolist()]
    vocab = {str(v): v for v in tracr_programs.PROGRAMS[task.program].vocab}
    want = [_program_output(key, tuple(vocab[t] for t in s)) for s in seqs]
    if task.meta["categorical_output"]:
        out = task.meta["output_encoding"]
        assert data.answers[:, 1:].tolist() == [[out[str(v)] for v in row] for row in want]
    else:
        torch.testing.assert_close(data.extra["target"][:, 1:], torch.tensor(want))
    with torch.no_grad():
        assert output_error(task, model(data.clean), data).item() <= TOL


def test_metric_and_divergence(key):
    task, model, data = loaded(key)
    run = PatchableModel(model, GraphConfig())
    with torch.no_grad():
        clean = model(data.clean)
        ablated = run(
            data.clean,
            torch.zeros(run.graph.n_edges),
            run.ablate("zero", data.clean, data.corrupted),
        )
    stacked = torch.stack([clean, ablated])
    m = task.metric(stacked, data)
    assert m.shape == (2, data.n) and (m[0] >= m[1]).all() and m[0].mean() > m[1].mean()
    if task.meta["categorical_output"]:  # one-hot logits: 1 on the right token, 0 elsewhere
        exact = torch.log_softmax(torch.eye(clean.shape[-1])[0], 0)[0]
        torch.testing.assert_close(m[0], exact.expand(data.n), atol=1e-3, rtol=0)
    else:
        assert m[0].abs().max() < 1e-8
    div = task.divergence(stacked, clean, data)
    assert div[0].abs().max() < 1e-5 and (div[1] >= 0).all() and div[1].mean() > 0


# ----- ground truth ------------------------------------------------------------------------------
def test_zero_ground_truth_is_the_connected_edges_less_the_documented(key):
    task, model, _ = loaded(key)
    c = model.cfg
    connected = tracr_base.read_write_edges(model, task.meta["residual_labels"])
    gt = task.ground_truth(EdgeGraph(c.n_layers, c.n_heads, True, GraphConfig()), "zero")
    assert gt == set(connected) - LEFT_OUT[key]
    if key in POSITION_FREE:
        return
    per_pos = task.ground_truth(EdgeGraph(c.n_layers, c.n_heads, True, GraphConfig(positions=5)))
    assert {n.split("@")[0] for n in per_pos} <= set(connected)


def test_edge_counts_and_resample_inside_zero(key):
    task, model, _ = loaded(key)
    c = model.cfg
    for pos in COUNTS[key]:
        g = EdgeGraph(c.n_layers, c.n_heads, True, GraphConfig(positions=pos))
        zero, resample = task.ground_truth(g, "zero"), task.ground_truth(g, "resample")
        assert [len(zero), len(resample)] == COUNTS[key][pos]
        assert resample < zero


def test_graph_without_a_ground_truth_edge_is_unsupported():
    """On the attention-only graph every resample ground-truth edge of pair-balance touches an
    MLP: the option is refused for the task (the evaluator skips it before any work)."""
    task, model, _ = loaded("tracr-pair-balance")
    config = GraphConfig(include_mlp=False)
    with pytest.raises(UnsupportedGraphError, match="no edge of its resample-ablation"):
        task.check_graph(config)
    g = EdgeGraph(model.cfg.n_layers, model.cfg.n_heads, True, config)
    with pytest.raises(UnsupportedGraphError):
        task.ground_truth(g, "zero")


def test_position_free_task_refuses_per_position_graphs():
    task, model, _ = loaded("tracr-shuffle-dyck")
    g = EdgeGraph(model.cfg.n_layers, model.cfg.n_heads, True, GraphConfig(positions=5))
    with pytest.raises(ValueError, match="no per-position ground truth"):
        task.ground_truth(g, "zero")


@pytest.mark.parametrize("key,graph,ablation", _cases())
def test_ground_truth_circuit_is_faithful_and_minimal(key, graph, ablation):
    names, err = circuit_errors(key, graph, ablation, drop_each=True)
    assert names
    assert err[0].item() <= TOL, f"the circuit alone gets {err[0].item()} outputs wrong"
    harmless = [n for n, e in zip(names, err[1:].tolist(), strict=True) if e <= TOL]
    assert not harmless, f"removing any of {harmless} leaves every output right"


def test_ablating_everything_breaks_the_program(key):
    task, model, data = loaded(key)
    run = PatchableModel(model, GraphConfig(positions=None if key in POSITION_FREE else 5))
    for ablation in ("zero", "resample"):
        ab = run.ablate(ablation, data.clean, data.corrupted)
        with torch.no_grad():
            err = output_error(task, run(data.clean, torch.zeros(run.graph.n_edges), ab), data)
        assert err.item() > TOL


def test_tasks_all_includes_the_new_tasks_but_the_costly_dyck():
    from tasks import TASKS

    every = TASKS.resolve("all")
    assert {"tracr-hist", "tracr-sort-unique", "tracr-pair-balance"} <= set(every)
    assert "tracr-shuffle-dyck" not in every and "tracr-shuffle-dyck" in TASKS.keys()
    assert TASKS.resolve("tracr-shuffle-dyck") == ["tracr-shuffle-dyck"]


def _greedy_circuit(task, run, data, ab, order) -> set[str]:
    """Drop the edges of ``order`` one by one, each only if every output stays right."""
    keep = list(order)
    for e in order:
        trial = [k for k in keep if k != e]
        with torch.no_grad():
            logits = run(data.clean, run.graph.edge_mask(trial)[None], ab)
        if output_error(task, logits, data)[0].item() <= TOL:
            keep = trial
    return set(keep)


@pytest.mark.slow
@pytest.mark.parametrize("key", KEYS)
def test_greedy_pruning_in_any_order_ends_in_the_ground_truth(key):
    """The ground truth is not one of several minimal circuits: pruning the connected edges
    greedily in random orders ends in exactly it, on every graph with MLPs the task supports."""
    import random

    task, model, data = loaded(key)
    connected = set(tracr_base.read_write_edges(model, task.meta["residual_labels"]))
    for pos in (None,) if key in POSITION_FREE else (None, 5):
        run = PatchableModel(model, GraphConfig(positions=pos))
        start = sorted(run.graph.project(connected))
        for ablation in ("zero", "resample"):
            ab = run.ablate(ablation, data.clean, data.corrupted)
            truth = task.ground_truth(run.graph, ablation)
            for seed in range(3):
                order = start[:]
                random.Random(seed).shuffle(order)
                assert _greedy_circuit(task, run, data, ab, order) == truth, (pos, ablation, seed)
