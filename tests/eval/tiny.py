"""Test-only registry entries for the evaluator's tests (imported by a fixture or ``--plugin``).

``_test-tiny``: a 3-layer random attention-only model; its ground truth is the top 10% of edges
by |metric gradient| on seed 0's data, so the ``_test-grad`` method (the same gradient) recovers
it exactly on seed 0: AUC 1, precision@k 1. ``_test-random`` scores at random, ``_test-broken``
raises, ``_test-crash`` kills its process, and ``_test-unavailable`` can't run here.
``_test-flat`` is ``_test-tiny`` with corrupted = clean: its metric gives no signal.
"""

from __future__ import annotations

import os

import torch

from methods.base import Method, register_method
from patching import PatchableModel
from tasks.base import Task, TaskData, register_task
from tasks.problem import Problem
from tests.models import tiny_model

POS, VOCAB = 5, 20


def _model():
    model = tiny_model("attn-only", n_layers=3, n_heads=2, d_model=16, d_vocab=VOCAB)
    with torch.no_grad():  # no biases: the prediction depends on the input, not a fixed token
        for name, p in model.named_parameters():
            if name.split(".")[-1].startswith("b_"):
                p.zero_()
    return model


def _grad_scores(problem: Problem) -> torch.Tensor:
    ones = torch.ones(problem.n_edges, device=problem.model.device, requires_grad=True)
    problem.metric_of(ones).backward()
    return ones.grad


@register_task("_test-tiny")
class TinyTask(Task):
    description = "test only: tiny 3-layer random model, truth = top 10% edges by gradient"
    ablations = ("resample", "zero")
    default_n = 6
    truth_fraction = 0.1

    def load_model(self, device: str = "cpu"):
        return _model().to(device)

    def _make_data(self, n: int, seed: int) -> TaskData:
        g = torch.Generator().manual_seed(seed)
        clean = torch.randint(0, VOCAB, (n, POS), generator=g)
        corrupted = torch.randint(0, VOCAB, (n, POS), generator=g)
        mask = torch.zeros(n, POS, dtype=torch.bool)
        mask[:, -1] = True
        with torch.no_grad():
            top = _model()(clean)[:, -1].argmax(-1)
        answers = torch.zeros(n, POS, dtype=torch.long)
        answers[:, -1] = top
        return TaskData(clean, corrupted, mask, answers)

    def metric(self, logits, data):
        logp = torch.log_softmax(logits, -1)
        picked = logp.gather(-1, data.answers.unsqueeze(-1).expand(*logits.shape[:-1], 1))[..., 0]
        mask = data.answer_mask.to(picked.dtype)
        return (picked * mask).sum(-1) / mask.sum(-1)

    def _ground_truth(self, graph, ablation):
        pm = PatchableModel(_model(), graph.config)
        problem = Problem.from_task(self, pm, self.make_data(self.default_n, 0), ablation)
        scores = _grad_scores(problem).abs()
        k = max(1, int(self.truth_fraction * graph.n_edges))
        return {graph.edge_names[i] for i in scores.argsort(descending=True)[:k].tolist()}


@register_task("_test-unavailable")
class UnavailableTask(TinyTask):
    description = "test only: never available"

    def unavailable_reason(self):
        return "needs hardware this machine lacks"


@register_task("_test-flat")
class FlatTask(TinyTask):
    description = "test only: corrupted = clean, so the metric gives no signal"

    def _make_data(self, n: int, seed: int) -> TaskData:
        data = super()._make_data(n, seed)
        return TaskData(data.clean, data.clean.clone(), data.answer_mask, data.answers)

    def _ground_truth(self, graph, ablation):
        return set(graph.edge_names[:3])


@register_method("_test-grad")
class GradMethod(Method):
    description = "test only: |d metric / d mask| at the clean model"

    def scores(self, problem):
        return _grad_scores(problem)


@register_method("_test-random")
class RandomMethod(Method):
    description = "test only: random scores"

    def scores(self, problem):
        return torch.randn(problem.n_edges)


@register_method("_test-broken")
class BrokenMethod(Method):
    description = "test only: raises"

    def scores(self, problem):
        raise RuntimeError("deliberately broken")


@register_method("_test-crash")
class CrashMethod(Method):
    description = "test only: kills its process"

    def scores(self, problem):
        os._exit(3)
