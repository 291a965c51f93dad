"""tracr-reverse and tracr-proportion: the shipped model computes the program on every input, and
every ground truth is a faithful, minimal circuit under its ablation, with and without positions.

Circuits run through ``patching.PatchableModel`` (bidirectional attention for tracr-reverse);
the forward itself is tested against the TransformerLens-hook reference in tests/patching.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from models import tracr
from patching.graph import EdgeGraph, GraphConfig
from patching.patched import PatchableModel
from tasks import get_task, tracr_base, tracr_programs
from tests.patching.reference import reference_patched_logits
from tests.tasks.circuits import circuit_errors as shared_circuit_errors

KEYS = ["tracr-reverse", "tracr-proportion"]
TOL = 1e-3  # a numeric output "matches" within TOL and "changes" beyond it
GRAPHS = {
    "qkv": GraphConfig(),
    "qkv-pos": GraphConfig(positions=5),
    "merged": GraphConfig(split_qkv=False),
    "merged-pos": GraphConfig(split_qkv=False, positions=5),
    "attn-only": GraphConfig(include_mlp=False),
}
CASES = [(k, g, a) for k in KEYS for g in GRAPHS for a in ("zero", "resample")]
ids = [f"{k}-{g}-{a}" for k, g, a in CASES]


@pytest.fixture(scope="module", params=KEYS)
def key(request):
    return request.param


_cache: dict[str, tuple] = {}


def loaded(key: str):
    """(task, model, data over every input) for ``key``, built once per test session."""
    if key not in _cache:
        task = get_task(key)
        _cache[key] = (task, task.load_model(), task.all_data())
    return _cache[key]


# ----- running circuits --------------------------------------------------------------------------
def output_error(task, logits, data) -> torch.Tensor:
    """Per mask: how far the output is from the program's at the answer positions. Categorical:
    the number of wrong argmaxes; numeric: the largest absolute error."""
    ans = data.answer_mask
    if task.meta["categorical_output"]:
        return ((logits.argmax(-1) != data.answers) & ans).flatten(-2).sum(-1).float()
    err = (logits[..., 0] - data.extra["target"]).abs() * ans
    return err.flatten(-2).amax(-1)


def circuit_errors(key, graph_name, ablation, drop_each=False):
    """Output error of the ground-truth circuit (and, with ``drop_each``, of the circuit minus
    each of its edges in turn), every other edge ablated (tests.tasks.circuits)."""
    task, model, data = loaded(key)
    return shared_circuit_errors(
        task, model, data, GRAPHS[graph_name], ablation, output_error, drop_each
    )


# ----- the task interface ------------------------------------------------------------------------
def test_task_interface(key):
    task, _, _ = loaded(key)
    assert task.ablations == ("zero", "resample") and task.default_ablation == "zero"
    assert task.per_position and task.metric_description
    assert task.max_examples == len(task.inputs()) == len(set(task.inputs()))
    assert task.unavailable_reason() is None
    assert task.load_model() is task.load_model()  # cached


def test_data_covers_every_input_with_distinct_partners(key):
    task, _, data = loaded(key)
    n = task.max_examples
    assert data.clean.shape == data.corrupted.shape == (n, 5)
    assert len({tuple(r) for r in data.clean.tolist()}) == n  # every input once
    assert (data.clean != data.corrupted).any(-1).all()  # partner differs from its clean input
    inputs = {tuple(r) for r in data.clean.tolist()}
    assert {tuple(r) for r in data.corrupted.tolist()} <= inputs
    bos = task.meta["input_encoding"]["BOS"]
    assert (data.clean[:, 0] == bos).all() and (data.clean[:, 1:] != bos).all()
    assert not data.answer_mask[:, 0].any() and data.answer_mask[:, 1:].all()
    assert (data.answers[:, 0] == 0).all()
    a, b, other = task.make_data(7, seed=0), task.make_data(7, seed=0), task.make_data(7, seed=1)
    assert torch.equal(a.clean, b.clean) and torch.equal(a.corrupted, b.corrupted)
    assert not torch.equal(other.clean, a.clean)


@pytest.mark.parametrize("n", [0, -3, "all", None])
def test_bad_n_raises(key, n):
    task, _, _ = loaded(key)
    with pytest.raises(ValueError, match="n must be a positive int"):
        task.make_data(n)


def test_too_many_examples_raises(key):
    task, _, _ = loaded(key)
    with pytest.raises(ValueError, match=f"at most {task.max_train()} train examples"):
        task.make_data(task.max_train() + 1)


def _decode(task, tokens):
    inv = {v: k for k, v in task.meta["input_encoding"].items()}
    return [[inv[t] for t in row[1:]] for row in tokens.tolist()]


def test_model_computes_the_program_on_every_input(key):
    task, model, data = loaded(key)
    with torch.no_grad():
        logits = model(data.clean)
    seqs = _decode(task, data.clean)
    if key == "tracr-reverse":
        inv = {v: k for k, v in task.meta["output_encoding"].items()}
        got = [[inv[i] for i in row[1:]] for row in logits.argmax(-1).tolist()]
        assert got == [list(reversed(s)) for s in seqs]
    else:
        want = torch.tensor(
            [[sum(t == "x" for t in s[: i + 1]) / (i + 1) for i in range(len(s))] for s in seqs]
        )
        assert logits.shape[-1] == 1
        torch.testing.assert_close(logits[:, 1:, 0], want, atol=1e-5, rtol=0)
        torch.testing.assert_close(data.extra["target"][:, 1:], want)
    assert output_error(task, logits, data).item() <= TOL


def test_metric_and_divergence(key):
    task, model, data = loaded(key)
    with torch.no_grad():
        clean = model(data.clean)
        zero = PatchableModel(model, GraphConfig())
        ablated = zero(
            data.clean,
            torch.zeros(zero.graph.n_edges),
            zero.ablate("zero", data.clean, data.corrupted),
        )
    m_clean, m_abl = task.metric(clean, data), task.metric(ablated, data)
    assert m_clean.shape == (data.n,)
    assert (m_clean >= m_abl).all() and m_clean.mean() > m_abl.mean()
    if key == "tracr-proportion":
        assert m_clean.abs().max() < 1e-8
    stacked = torch.stack([clean, ablated])
    assert task.metric(stacked, data).shape == (2, data.n)
    div = task.divergence(stacked, clean, data)
    assert div.shape == (2, data.n)
    assert div[0].abs().max() < 1e-6 and (div[1] >= 0).all() and div[1].mean() > 0


def test_unsupported_graph_raises(key):
    task, model, _ = loaded(key)
    cfg = model.cfg
    with pytest.raises(ValueError, match="positions=5"):
        task.ground_truth(EdgeGraph(cfg.n_layers, 1, True, GraphConfig(positions=4)))
    with pytest.raises(ValueError, match="compiled model"):
        task.ground_truth(EdgeGraph(cfg.n_layers + 1, 1, True, GraphConfig()))
    with pytest.raises(ValueError, match="ablations"):
        task.ground_truth(EdgeGraph(cfg.n_layers, 1, True, GraphConfig()), "mean")


# ----- ground truth ------------------------------------------------------------------------------
# Edges the compiled weights connect that the zero-ablation ground truth leaves out (position-free,
# q/k/v split), each explained in the task's module docstring.
LEFT_OUT = {
    "tracr-reverse": {"embed->a0.h0.q", "embed->a3.h0.q", "embed->a0.h0.k"},
    "tracr-proportion": set(),
}


def test_zero_ground_truth_is_the_connected_edges_less_the_documented(key):
    task, model, _ = loaded(key)
    connected = tracr_base.read_write_edges(model, task.meta["residual_labels"])
    gt = task.ground_truth(EdgeGraph(model.cfg.n_layers, 1, True, GraphConfig()), "zero")
    assert gt == set(connected) - LEFT_OUT[key]
    per_pos = task.ground_truth(EdgeGraph(model.cfg.n_layers, 1, True, GraphConfig(positions=5)))
    assert {n.split("@")[0] for n in per_pos} <= set(connected)


def test_resample_ground_truth_is_inside_the_zero_one(key):
    task, model, _ = loaded(key)
    for config in GRAPHS.values():
        g = EdgeGraph(model.cfg.n_layers, 1, True, config)
        assert task.ground_truth(g, "resample") < task.ground_truth(g, "zero")


def test_edge_counts():
    counts = {}
    for key in KEYS:
        task, model, _ = loaded(key)
        for pos in (None, 5):
            g = EdgeGraph(model.cfg.n_layers, 1, True, GraphConfig(positions=pos))
            counts[key, pos] = [len(task.ground_truth(g, a)) for a in ("zero", "resample")]
    assert counts == {
        ("tracr-reverse", None): [10, 2],
        ("tracr-reverse", 5): [37, 8],
        ("tracr-proportion", None): [5, 3],
        ("tracr-proportion", 5): [20, 12],
    }


@pytest.mark.parametrize("key,graph,ablation", CASES, ids=ids)
def test_ground_truth_circuit_reproduces_the_program(key, graph, ablation):
    names, err = circuit_errors(key, graph, ablation)
    assert names
    assert err[0].item() <= TOL, f"the circuit alone gets {err[0].item()} outputs wrong"


def test_ablating_everything_breaks_the_program(key):
    task, model, data = loaded(key)
    for ablation in ("zero", "resample"):
        run = PatchableModel(model, GraphConfig(positions=5))
        ab = run.ablate(ablation, data.clean, data.corrupted)
        with torch.no_grad():
            err = output_error(task, run(data.clean, torch.zeros(run.graph.n_edges), ab), data)
        assert err.item() > TOL


@pytest.mark.parametrize("key,graph,ablation", CASES, ids=ids)
def test_ground_truth_is_minimal(key, graph, ablation):
    names, err = circuit_errors(key, graph, ablation, drop_each=True)
    harmless = [n for n, e in zip(names, err[1:].tolist(), strict=True) if e <= TOL]
    assert not harmless, f"removing any of {harmless} leaves every output right"


def test_patchable_model_runs_the_bidirectional_reverse_model():
    _, model, data = loaded("tracr-reverse")
    pm = PatchableModel(model, GraphConfig())
    ab = pm.ablate("zero", data.clean, data.corrupted)
    torch.testing.assert_close(pm(data.clean, torch.ones(pm.graph.n_edges), ab), model(data.clean))
    reference = reference_patched_logits(
        model,
        pm.graph,
        data.clean[:8],
        (torch.arange(pm.graph.n_edges) % 3 > 0).float(),
        {s: torch.zeros(()) for s in pm.graph.sources},
    )
    ab8 = pm.ablate("zero", data.clean[:8], data.corrupted[:8])
    mask = (torch.arange(pm.graph.n_edges) % 3 > 0).float()
    torch.testing.assert_close(pm(data.clean[:8], mask, ab8), reference, atol=1e-4, rtol=1e-4)


# ----- the shipped weights -----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(tracr_programs.PROGRAMS))
def test_shipped_weights_match_a_fresh_compilation(name):
    """Recompile with tracr (JAX): same tensors, same metadata, and the TL model reproduces tracr's
    final residual stream and decoded output on every input of up to 5 tokens."""
    assembled = tracr.compile_program(tracr_programs.program(name))
    tensors, meta = tracr.convert(tracr_programs.program(name), assembled)
    shipped = tracr.load_state(name, tracr_programs.WEIGHTS_DIR)
    assert shipped.keys() == tensors.keys()
    for k, t in tensors.items():
        torch.testing.assert_close(shipped[k], t, atol=0, rtol=0, msg=k)
    assert tracr_programs.load_meta(name) == meta
    model = tracr.build_model(tensors, meta)
    enc, spec = meta["input_encoding"], tracr_programs.PROGRAMS[name]
    for length in range(1, spec.max_seq_len + 1):
        seqs = list(itertools.product(spec.vocab, repeat=length))
        toks = torch.tensor([[enc[tracr.BOS]] + [enc[str(t)] for t in s] for s in seqs])
        with torch.no_grad():
            logits, cache = model.run_with_cache(toks)
        out = assembled.forward(assembled.params, np.asarray(toks))  # tracr, whole batch
        resid = cache[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"]
        want = torch.from_numpy(np.array(out.transformer_output.output))
        torch.testing.assert_close(resid, want, atol=1e-5, rtol=0)
        unembedded = torch.from_numpy(np.array(out.unembedded_output))[:, 1:]
        if meta["categorical_output"]:  # tracr's output is the argmax id
            assert torch.equal(logits[:, 1:].argmax(-1), unembedded.long())
        else:
            torch.testing.assert_close(logits[:, 1:, 0], unembedded, atol=1e-5, rtol=0)
