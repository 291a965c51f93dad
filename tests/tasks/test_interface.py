"""Interface tests over every registered task (issue 7): data shapes and dtypes, a metric that
separates clean from ablated, and a non-empty ground truth that is a subset of the graph's edges
for every supported graph option and ablation. Tasks that can't run here (e.g. ``ioi`` without
GPT-2's weights) are skipped with their reason; their offline parts are tested in their own
modules."""

from __future__ import annotations

import pytest
import torch

from core.registry import UnknownKeyError
from patching import GraphConfig, PatchableModel
from tasks import TASKS, get_task
from tasks.problem import Problem

OPTIONS = {
    "default": dict(),
    "merged-qkv": dict(split_qkv=False),
    "attention-only": dict(include_mlp=False),
    "per-position": dict(positions=True),
}
_cache: dict = {}


def available(key: str):
    task = get_task(key)
    reason = task.unavailable_reason()
    if reason is not None:
        pytest.skip(f"{key} unavailable here: {reason}")
    if key not in _cache:
        # 64 examples: a task whose output is mostly one class (siit-majority: 8% of answers
        # are 1) can draw 8 examples of one class, where no ablation can lower the metric
        n = min(64, task.max_train())
        _cache[key] = (task, task.load_model("cpu"), task.make_data(n, 0))
    return _cache[key]


@pytest.mark.parametrize("key", TASKS.keys())
def test_data_shapes_and_dtypes(key):
    task, model, data = available(key)
    n = data.n
    assert data.clean.shape == data.corrupted.shape and data.clean.shape[0] == n
    for t in (data.clean, data.corrupted, data.answers):
        assert t.dtype == torch.long
        assert int(t.min()) >= 0 and int(t.max()) < model.cfg.d_vocab
    assert data.answer_mask.dtype == torch.bool and data.answer_mask.any(1).all()
    assert not torch.equal(data.clean, data.corrupted)
    assert task.default_ablation in task.ablations
    assert task.description and task.metric_description


@pytest.mark.parametrize("key", TASKS.keys())
def test_metric_separates_clean_from_ablated(key):
    task, model, data = available(key)
    for ablation in task.ablations:
        problem = Problem.from_task(task, PatchableModel(model), data, ablation)
        clean = task.metric(problem.clean_logits, data).mean()
        ablated = task.metric(problem.ablated_logits, data).mean()
        assert clean > ablated, f"{key}/{ablation}: clean {clean:.4g} <= ablated {ablated:.4g}"


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("key", TASKS.keys())
def test_ground_truth_is_a_nonempty_subset_of_the_graph(key, option):
    task, model, data = available(key)
    opts = dict(OPTIONS[option])
    if opts.get("positions") is True:
        opts["positions"] = data.clean.shape[1]
    config = GraphConfig(**opts)
    try:
        task.check_graph(config)
    except ValueError as exc:  # an unsupported option must say so clearly
        assert "position" in str(exc) or "support" in str(exc)
        return
    graph = PatchableModel(model, config).graph
    names = set(graph.edge_names)
    for ablation in task.ablations:
        truth = task.ground_truth(graph, ablation)
        assert truth and truth <= names, f"{key}/{option}/{ablation}"


def test_unknown_task_suggests_the_closest():
    with pytest.raises(UnknownKeyError, match="Did you mean: tracr-reverse"):
        get_task("tracr-revers")


@pytest.mark.parametrize("key", TASKS.keys())
def test_bad_n_is_refused_with_the_limit(key):
    task = get_task(key)
    with pytest.raises(ValueError):
        task.make_data(0)
    with pytest.raises(ValueError, match=str(task.max_train())):
        task.make_data(task.max_train() + 1)
