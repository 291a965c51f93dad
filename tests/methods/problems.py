"""Problems the method tests share: tiny seeded models (gpt2-like, a dead head) and the tracr
tasks with their ground truth. A helper module, not a test module: tests import builders from
here or take the fixtures in ``conftest.py``."""

from __future__ import annotations

import numpy as np
import torch

from patching import PatchableModel
from patching.graph import GraphOptions
from tasks import get_task
from tasks.base import TaskData, kl_from_clean
from tasks.problem import Problem
from tests.models import tiny_model

N, P = 4, 6


def last_logprob(logits, data):
    """Log-probability of the answer at the last position (higher = clean behaviour)."""
    return logits[..., -1, :].log_softmax(-1).gather(-1, last_answer(logits, data)).squeeze(-1)


def last_answer(logits, data):
    """The answer token at the last position, shaped to gather from ``logits[..., -1, :]``."""
    a = data.answers[:, -1]
    return a.view(*([1] * (logits.dim() - 3)), -1, 1).expand(*logits.shape[:-3], -1, 1)


def make_problem(kind="gpt2", dtype=torch.float32, ablation="resample", seed=0, model=None, **kw):
    """A tiny seeded model on random prompts; the answer is its own last-position argmax."""
    model = model or tiny_model(kind, dtype, seed=seed, **kw)
    g = torch.Generator().manual_seed(seed)
    vocab = model.cfg.d_vocab
    clean = torch.randint(0, vocab, (N, P), generator=g)
    corrupt = torch.randint(0, vocab, (N, P), generator=g)
    with torch.no_grad():
        answers_last = model(clean)[:, -1].argmax(-1)
    answers = torch.zeros(N, P, dtype=torch.long)
    answers[:, -1] = answers_last
    mask = torch.zeros(N, P, dtype=torch.bool)
    mask[:, -1] = True
    data = TaskData(clean, corrupt, mask, answers)
    pm = PatchableModel(model)
    ab = pm.ablate(ablation, clean, corrupt, reference=corrupt)
    return Problem(pm, data, ab, last_logprob, kl_from_clean)


def dead_head_problem():
    """Head a1.h2 writes nothing (W_O = 0): every edge out of it has no effect."""
    model = tiny_model("gpt2", torch.float64)
    with torch.no_grad():
        model.blocks[1].attn.W_O[2].zero_()
    return make_problem(model=model)


LIVE_HEADS = {(0, 0), (1, 1)}  # the heads that write in planted_problem (others: W_O = 0)


def planted_problem() -> tuple[Problem, np.ndarray]:
    """A 2-layer, 2-head attention-only model with heads a0.h1 and a1.h0 silenced: the planted
    circuit is every edge between live nodes (embed, a0.h0, a1.h1, logits); every edge out of or
    into a silent head has no effect at all. Returns the problem and the circuit's edge mask."""
    model = tiny_model("attn-only", torch.float32, n_layers=2, n_heads=2, d_model=16)
    with torch.no_grad():
        for layer in range(2):
            for head in range(2):
                if (layer, head) not in LIVE_HEADS:
                    model.blocks[layer].attn.W_O[head].zero_()
    problem = make_problem(model=model)
    dead = ("a0.h1", "a1.h0")
    truth = np.array([not any(d in name for d in dead) for name in problem.model.graph.edge_names])
    assert truth.sum() == 12 and len(truth) == 29
    return problem, truth


def tracr_problem(
    task_key: str, ablation: str, graph: GraphOptions | None = None
) -> tuple[Problem, np.ndarray]:
    """A tracr task at all its inputs (seed 0) on ``graph`` (default: the default graph), and
    its ground-truth edge mask for ``ablation``."""
    graph = graph or GraphOptions()
    task = get_task(task_key)
    data = task.all_data()  # every input, not a train split: these tests check the methods
    pm = PatchableModel(task.load_model(), graph.config(data.clean.shape[1]))
    problem = Problem.from_task(task, pm, data, ablation)
    truth = pm.graph.edge_mask(task.ground_truth(pm.graph, ablation)).numpy()
    return problem, truth
