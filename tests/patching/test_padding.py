"""Padded batches: the patched forward with an ``attention_mask`` gives, at each example's real
positions, what the example gives alone and unpadded (causal and bidirectional attention, left
and right padding, absolute and rotary positions, sliding windows, soft-caps), for fractional
masks, and so do the mask gradients."""

from __future__ import annotations

import pytest
import torch

from models.families import FAMILIES
from models.random import tiny_hf_model
from patching.patched import PatchableModel
from tests.models import tiny_model

LENGTHS = (3, 5, 7)
PAD_ID = 1


def _tl(bidirectional: bool):
    model = tiny_model("gpt2", seed=3)
    if bidirectional:
        model.cfg.attention_dir = "bidirectional"
    return model


MODELS = {
    "tl-gpt2-causal": lambda: _tl(False),
    "tl-gpt2-bidirectional": lambda: _tl(True),
    **{f"hf-{name}": (lambda name=name: tiny_hf_model(name)) for name in sorted(FAMILIES)},
}


def _pad(seqs: list[torch.Tensor], side: str) -> tuple[torch.Tensor, torch.Tensor]:
    P = max(len(s) for s in seqs)
    tokens = torch.full((len(seqs), P), PAD_ID, dtype=torch.long)
    mask = torch.zeros(len(seqs), P, dtype=torch.bool)
    for i, s in enumerate(seqs):
        sl = slice(0, len(s)) if side == "right" else slice(P - len(s), P)
        tokens[i, sl], mask[i, sl] = s, True
    return tokens, mask


def _real(side: str, P: int, n: int) -> slice:
    return slice(0, n) if side == "right" else slice(P - n, P)


@pytest.fixture(scope="module", params=sorted(MODELS))
def pm(request) -> PatchableModel:
    torch.manual_seed(0)
    return PatchableModel(MODELS[request.param]())


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_equals_single_examples(pm, side):
    gen = torch.Generator().manual_seed(1)
    V = pm.cfg.d_vocab
    clean = [torch.randint(2, V, (n,), generator=gen) for n in LENGTHS]
    corrupt = [torch.randint(2, V, (n,), generator=gen) for n in LENGTHS]
    tokens, mask = _pad(clean, side)
    corrupted, _ = _pad(corrupt, side)
    masks = torch.rand(2, pm.graph.n_edges, generator=gen)
    ab = pm.ablate("resample", tokens, corrupted, attention_mask=mask)
    out = pm(tokens, masks, ab, attention_mask=mask)  # [2, B, P, V]
    assert torch.isfinite(out).all()
    P = tokens.shape[1]
    for i, n in enumerate(LENGTHS):
        single_ab = pm.ablate("resample", clean[i][None], corrupt[i][None])
        single = pm(clean[i][None], masks, single_ab)[:, 0]  # [2, n, V]
        torch.testing.assert_close(out[:, i, _real(side, P, n)], single, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_gradients_equal_sum_of_single_gradients(pm, side):
    gen = torch.Generator().manual_seed(2)
    V = pm.cfg.d_vocab
    clean = [torch.randint(2, V, (n,), generator=gen) for n in LENGTHS]
    corrupt = [torch.randint(2, V, (n,), generator=gen) for n in LENGTHS]
    weights = [torch.randn(n, V, generator=gen) for n in LENGTHS]
    tokens, mask = _pad(clean, side)
    corrupted, _ = _pad(corrupt, side)
    P = tokens.shape[1]
    base = torch.rand(pm.graph.n_edges, generator=gen)

    m = base.clone().requires_grad_(True)
    out = pm(
        tokens,
        m,
        pm.ablate("resample", tokens, corrupted, attention_mask=mask),
        attention_mask=mask,
    )
    loss = sum(
        (out[i, _real(side, P, n)] * w).sum()
        for i, (n, w) in enumerate(zip(LENGTHS, weights, strict=True))
    )
    (grad,) = torch.autograd.grad(loss, m)
    assert torch.isfinite(grad).all()

    total = torch.zeros_like(base)
    for c, x, w in zip(clean, corrupt, weights, strict=True):
        m1 = base.clone().requires_grad_(True)
        o = pm(c[None], m1, pm.ablate("resample", c[None], x[None]))
        (g,) = torch.autograd.grad((o[0] * w).sum(), m1)
        total += g
    torch.testing.assert_close(grad, total, rtol=1e-3, atol=1e-3)


def test_mean_ablation_averages_only_real_tokens():
    pm = PatchableModel(_tl(False))
    gen = torch.Generator().manual_seed(4)
    seqs = [torch.randint(2, 50, (n,), generator=gen) for n in LENGTHS]
    tokens, mask = _pad(seqs, "right")
    ab = pm.ablate("mean", tokens, tokens, attention_mask=mask)
    # position 5 is real only in the 7-token example: the mean there is that example's output
    alone = pm.source_outputs(seqs[2][None])
    torch.testing.assert_close(ab.values[:, 0, 5], alone[:, 0, 5], rtol=1e-5, atol=1e-5)
    # position 0 is real in all three: the plain mean of their outputs
    firsts = torch.stack([pm.source_outputs(s[None])[:, 0, 0] for s in seqs]).mean(0)
    torch.testing.assert_close(ab.values[:, 0, 0], firsts, rtol=1e-5, atol=1e-5)


def test_bad_attention_mask_is_refused():
    pm = PatchableModel(_tl(False))
    tokens = torch.randint(2, 50, (2, 4))
    ab = pm.ablate("zero", tokens)
    ones = torch.ones(pm.graph.n_edges)
    with pytest.raises(ValueError, match="attention_mask must be"):
        pm(tokens, ones, ab, attention_mask=torch.ones(2, 3, dtype=torch.bool))
    empty = torch.ones(2, 4, dtype=torch.bool)
    empty[1] = False
    with pytest.raises(ValueError, match="without any real token"):
        pm(tokens, ones, ab, attention_mask=empty)


def test_tracr_reverse_runs_on_inputs_of_several_lengths():
    """A bidirectional compiled program whose output depends on the input's length (reverse
    computes it by attending to every token) runs on one padded batch of lengths 1-4 without
    any monkeypatching: every output token is right, and a method runs on the problem."""
    from methods.base import get_method
    from tasks import get_task
    from tasks.base import TaskData
    from tasks.problem import Problem

    task = get_task("tracr-reverse")
    reason = task.unavailable_reason()
    if reason is not None:
        pytest.skip(f"tracr-reverse unavailable here: {reason}")
    clean = [(2,), (1, 3), (3, 1, 2), (2, 3, 1, 1)]
    corrupt = [(1,), (2, 2), (1, 1, 3), (3, 2, 2, 1)]
    pad = task.tokens([clean[0]])[0, 0].item()  # BOS: any id, masked out

    def batch(seqs):
        rows = [task.tokens([s])[0] for s in seqs]
        P = max(len(r) for r in rows)
        t = torch.full((len(rows), P), pad, dtype=torch.long)
        m = torch.zeros(len(rows), P, dtype=torch.bool)
        for i, r in enumerate(rows):
            t[i, : len(r)], m[i, : len(r)] = r, True
        return t, m

    tokens, mask = batch(clean)
    corrupted, _ = batch(corrupt)
    answers = torch.zeros_like(tokens)
    for i, s in enumerate(clean):
        answers[i, : len(s) + 1] = task._targets([s])[0][0]
    answer_mask = mask.clone()
    answer_mask[:, 0] = False
    data = TaskData(tokens, corrupted, answer_mask, answers, attention_mask=mask)
    model = PatchableModel(task.load_model("cpu"))
    problem = Problem.from_task(task, model, data, "zero")
    predicted = problem.clean_logits.argmax(-1)
    assert (predicted[answer_mask] == answers[answer_mask]).all()
    # the mask matters: read as tokens, the padding changes the length and the reversal
    unmasked = Problem.from_task(
        task, model, TaskData(tokens, corrupted, answer_mask, answers), "zero"
    )
    assert (unmasked.clean_logits.argmax(-1)[answer_mask] != answers[answer_mask]).any()
    scores = get_method("eap", seed=0)(problem)
    assert scores.shape == (model.graph.n_edges,) and torch.isfinite(scores).all()
