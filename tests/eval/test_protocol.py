"""The evaluator follows MIB's protocol: dangling edges pruned before a circuit is scored (and it
matters under zero ablation), CPR from the method's ranking and CMD from |score|, ties averaged,
the Pareto AUC only for threshold-swept methods, and faithfulness on the held-out split."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eval.scoring import metrics
from eval.scoring.evaluate import evaluate, faithfulness_curves
from patching import PatchableModel
from patching.graph import GraphOptions
from patching.prune import prune_dangling
from tasks.base import TaskData
from tasks.problem import Problem
from tests.models import tiny_model

POS, VOCAB = 5, 20


def _logprob(logits, data):
    logp = torch.log_softmax(logits, -1)
    picked = logp.gather(-1, data.answers.unsqueeze(-1).expand(*logits.shape[:-1], 1))[..., 0]
    mask = data.answer_mask.to(picked.dtype)
    return (picked * mask).sum(-1) / mask.sum(-1)


def _kl(logits, clean_logits, data):
    return (logits - clean_logits).pow(2).mean((-1, -2))


@pytest.fixture(scope="module", params=["zero", "resample"])
def problem(request):
    """A 2-layer GPT-2-style model with random biases (so a head without inputs still writes)."""
    model = tiny_model("gpt2", n_layers=2, n_heads=2, d_model=16, d_vocab=VOCAB)
    pm = PatchableModel(model, GraphOptions().config(POS))
    g = torch.Generator().manual_seed(0)
    clean = torch.randint(0, VOCAB, (6, POS), generator=g)
    corrupted = torch.randint(0, VOCAB, (6, POS), generator=g)
    mask = torch.zeros(6, POS, dtype=torch.bool)
    mask[:, -1] = True
    with torch.no_grad():
        answers = torch.zeros(6, POS, dtype=torch.long)
        answers[:, -1] = model(clean)[:, -1].argmax(-1)
    data = TaskData(clean, corrupted, mask, answers)
    ablation = pm.ablate(request.param, clean, corrupted)
    return Problem(pm, data, ablation, _logprob, _kl)


def _faith(problem, mask) -> float:
    with torch.no_grad():
        m = problem.metric_of(torch.as_tensor(mask, dtype=torch.float32)).item()
    return float(metrics.normalised_faithfulness(m, problem.metric_clean, problem.metric_ablated))


def test_dangling_edges_are_pruned_and_it_matters_under_zero_ablation(problem):
    names = problem.model.graph.edge_names
    scores = np.zeros(problem.n_edges)
    scores[names.index("a1.h0->logits")] = 1.0  # a head none of whose inputs is kept
    fractions = (1 / problem.n_edges, 1.0)
    curves, _ = faithfulness_curves(problem, scores, {"cpr": False}, fractions=fractions)
    c = curves["cpr"]
    assert c.n_kept.tolist() == [1, problem.n_edges]
    assert c.n_in_graph.tolist() == [0, problem.n_edges]  # pruned to the empty circuit
    assert c.faithfulness[0] == pytest.approx(0.0, abs=1e-5)  # the empty circuit: ablated
    unpruned = _faith(problem, scores > 0)
    if problem.ablation.kind == "zero":
        # the head's bias still reaches the logits when the edge is kept: a different score
        assert abs(unpruned) > 0.01
    else:  # under resample the head's output is the corrupted one either way: no difference
        assert unpruned == pytest.approx(0.0, abs=1e-5)


def test_cpr_uses_the_signed_ranking_and_cmd_the_absolute_one(problem):
    scores = np.random.default_rng(1).normal(size=problem.n_edges)
    truth = np.zeros(problem.n_edges, bool)
    truth[:5] = True
    ev = evaluate(problem, scores, truth, signed=True)
    direct = [
        _faith(problem, prune_dangling(problem.model.graph.edge_names, m))
        for m in metrics.circuit_masks(scores, metrics.FRACTIONS, signed=True)
    ]
    assert ev.faithfulness == pytest.approx(direct, abs=1e-5)  # no ties: one circuit per size
    assert ev.faithfulness != pytest.approx(ev.faithfulness_abs, abs=1e-3)
    assert ev.cpr == pytest.approx(metrics.cpr(ev.fractions, ev.faithfulness), abs=1e-12)
    assert ev.cmd == pytest.approx(metrics.cmd(ev.fractions, ev.faithfulness_abs), abs=1e-12)
    unsigned = evaluate(problem, scores, truth, signed=False)
    assert unsigned.faithfulness == unsigned.faithfulness_abs
    assert unsigned.faithfulness_abs == pytest.approx(ev.faithfulness_abs, abs=1e-6)


def test_a_tie_at_the_cut_is_the_mean_over_its_fillings(problem):
    names = problem.model.graph.edge_names
    scores = np.zeros(problem.n_edges)
    a, b = names.index("m1->logits"), names.index("embed->logits")
    scores[[a, b]] = 1.0  # tied at the top; the 1-edge circuit takes one of them
    fractions = (1 / problem.n_edges, 1.0)
    curves, _ = faithfulness_curves(problem, scores, {"cpr": False}, fractions=fractions)
    one = [np.eye(problem.n_edges, dtype=bool)[i] for i in (a, b)]
    each = [_faith(problem, prune_dangling(names, m)) for m in one]
    assert curves["cpr"].faithfulness[0] == pytest.approx(np.mean(each), abs=1e-5)
    assert curves["cpr"].n_in_graph[0] == pytest.approx(np.mean([m.sum() for m in
        [prune_dangling(names, m) for m in one]]), abs=1e-12)  # fmt: skip


def test_pareto_auc_only_for_threshold_swept_methods(problem):
    scores = np.repeat([3.0, 2.0, 1.0, 0.0], [3, 5, 8, problem.n_edges - 16])
    truth = np.zeros(problem.n_edges, bool)
    truth[[0, 1, 4, 9, 20]] = True
    ranked = evaluate(problem, scores, truth)
    swept = evaluate(problem, scores, truth, threshold_swept=True)
    assert math.isnan(ranked.auc_pareto)
    assert swept.auc_pareto == pytest.approx(metrics.pareto_auc(truth, scores), abs=1e-12)
    assert swept.auc_pareto < swept.auc  # the staircase is pessimistic
    assert 0 <= swept.auroc_mib <= 1


def test_registered_threshold_swept_methods():
    from methods.base import METHODS, get_method

    get_method("acdc")  # registers every method
    swept = {k for k in METHODS.keys() if METHODS.get(k).threshold_swept}
    assert {"acdc", "ipd-sweep"} <= swept
    assert "eap" not in swept and "random" not in swept


def test_the_runner_scores_faithfulness_on_the_heldout_split(tiny, tiny_job):
    from eval.worker import run_job
    from patching.graph import GraphOptions
    from tasks.problem import build_problem
    from tasks.splits import build_heldout

    out = run_job(tiny_job("_test-grad"), isolated=False)
    rec, scores = out.record, out.scores.numpy()
    task = tiny.TinyTask()
    train = build_problem(task, GraphOptions(), rec.n, 0, "resample")
    held = build_heldout(task, train, "resample")
    truth = np.zeros(rec.n_edges, bool)
    on_held, on_train = evaluate(held, scores, truth), evaluate(train, scores, truth)
    assert rec.n_heldout == held.data.n == task.n_heldout()
    assert rec.cpr == pytest.approx(on_held.cpr, abs=1e-6)
    assert rec.metric_clean == pytest.approx(held.metric_clean, abs=1e-6)
    assert abs(on_train.cpr - on_held.cpr) > 1e-4  # the two splits do differ here
