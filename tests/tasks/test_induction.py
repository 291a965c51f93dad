"""The induction task: shipped checkpoint, data, metric, ground truth and its faithfulness.

Numbers for the shipped model (seed 1, 6000 steps; see tasks/induction/train_record.json):
- loss on the first copy 4.29 nats (uniform over 63 tokens: 4.14), on the repeat 0.05;
- head scores and the chosen heads: tasks/induction/groundtruth.json (previous-token a0.h0,
  a0.h3; induction a1.h0..a1.h3); 27 of 81 edges with q/k/v split;
- resample ablation, 128 task examples (seed 0): metric clean -0.042, fully ablated -5.63;
  normalised as (m(circuit) - m(ablated)) / (m(clean) - m(ablated)), the ground-truth circuit
  alone (its complement ablated) keeps 0.88 (0.90 without the q/k/v split; 27 random edges of
  81: 0.02-0.07); ablating the induction heads' outputs leaves 0.00.
- each role ablated alone, all else clean (normalised): previous-token -> induction keys 0.11,
  embed -> previous-token values 0.11, embed -> induction queries 0.17, embed -> induction
  values 0.49, embed -> previous-token queries/keys 1.00 and embed -> logits 1.00 (these carry
  position or the bigram prior, which clean and corrupted sequences share; they are in the
  ground truth for the mechanism, not for their resample effect).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from patching import GraphConfig, PatchableModel
from tasks import TASKS, get_task
from tasks.induction import CHECKPOINT, TRAIN_RECORD, groundtruth
from tasks.induction.data import (
    ModelConfig,
    answer_mask,
    generator,
    half_losses,
    repeated,
    training_batch,
)
from tasks.induction.train import TrainConfig, evaluate, train

RECORD = json.loads(TRAIN_RECORD.read_text())
GT_RECORD = groundtruth.load_record()


@pytest.fixture(scope="module")
def task():
    return get_task("induction")


@pytest.fixture(scope="module")
def model(task):
    return task.load_model()


@pytest.fixture(scope="module")
def data(task):
    return task.make_data(128, seed=0)


@pytest.fixture(scope="module")
def patched(model, data):
    pm = PatchableModel(model)
    return pm, pm.ablate("resample", data.clean, data.corrupted)


# ----- registry and shipped files ----------------------------------------------------------------
def test_registered(task):
    assert "induction" in TASKS
    assert task.ablations == ("resample",) and task.default_ablation == "resample"
    assert task.unavailable_reason() is None
    assert not task.per_position


def test_checkpoint_small_and_recorded():
    assert CHECKPOINT.stat().st_size < 1_000_000
    for key in (
        "model_config",
        "train_config",
        "final_loss_first_half",
        "final_loss_second_half",
        "torch_version",
        "train_seconds",
    ):
        assert key in RECORD
    assert RECORD["train_config"]["seed"] == TrainConfig().seed
    assert RECORD["train_config"]["steps"] == TrainConfig().steps


def test_model_shape(model):
    cfg = model.cfg
    assert (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head) == (2, 4, 64, 16)
    assert cfg.attn_only and cfg.normalization_type is None
    assert not model.training


# ----- the checkpoint does induction -------------------------------------------------------------
def test_checkpoint_does_induction(model):
    """First copy ~4.29 nats (no better than chance, log 63 = 4.14), repeat ~0.05 nats."""
    first, second = evaluate(model, ModelConfig(**RECORD["model_config"]))
    assert first == pytest.approx(RECORD["final_loss_first_half"], abs=1e-3)
    assert second == pytest.approx(RECORD["final_loss_second_half"], abs=1e-3)
    assert 4.0 < first < 4.6
    assert second < 0.15
    assert first - second > 4.0


def test_induction_on_training_distribution(model):
    """On i.i.d. training-style sequences the repeat is still far easier than the first copy."""
    cfg = ModelConfig(**RECORD["model_config"])
    tokens, seg_len = training_batch(512, cfg, generator(5, "groundtruth"))
    with torch.no_grad():
        first, second = half_losses(model(tokens), tokens, seg_len, cfg)
    assert first > 4.0 and second < 0.8


# ----- data --------------------------------------------------------------------------------------
def test_data_deterministic(task):
    a, b, c = task.make_data(16, seed=3), task.make_data(16, seed=3), task.make_data(16, seed=4)
    assert torch.equal(a.clean, b.clean) and torch.equal(a.corrupted, b.corrupted)
    assert not torch.equal(a.clean, c.clean)


def test_data_layout(task, data):
    cfg = task.config
    L, n = data.extra["seg_len"], cfg.n_ctx
    assert data.clean.shape == (128, n) and (data.clean[:, 0] == 0).all()
    assert ((L >= cfg.min_seg_len) & (L <= cfg.max_seg_len)).all()
    assert torch.equal(data.answer_mask.sum(-1), L - 1)
    for i in range(data.n):
        seq, corr, seg = data.clean[i], data.corrupted[i], int(L[i])
        first, second = seq[n - 2 * seg : n - seg], seq[n - seg :]
        assert torch.equal(first, second)
        prefix = set(seq[1 : n - 2 * seg].tolist())
        assert len(set(first.tolist())) == seg and not prefix & set(first.tolist())
        qs = data.answer_mask[i].nonzero()[:, 0]
        assert torch.equal(data.answers[i, qs], seq[qs + 1])
        assert torch.equal(seq[qs - seg + 1], seq[qs + 1])  # induction target
        # corrupted: the second segment's tokens never occur earlier
        assert not set(corr[n - seg :].tolist()) & set(corr[: n - seg].tolist())


def test_answer_mask_skips_unpredictable():
    cfg = ModelConfig()
    mask = answer_mask(torch.tensor([4, 12]), cfg)
    assert mask[0].nonzero()[:, 0].tolist() == [21, 22, 23]  # repeat starts at 21; 24 is last
    assert mask[1].nonzero()[:, 0].tolist() == list(range(13, 24))


def test_streams_differ():
    cfg = ModelConfig()
    a, _ = repeated(8, cfg, generator(0, "task"))
    b, _ = repeated(8, cfg, generator(0, "groundtruth"))
    assert not torch.equal(a, b)
    with pytest.raises(ValueError, match="unknown data stream"):
        generator(0, "nope")


# ----- metric ------------------------------------------------------------------------------------
def test_metric(task, model, data):
    with torch.no_grad():
        clean = task.metric(model(data.clean), data)
        corrupt = task.metric(model(data.corrupted), data)
        stacked = task.metric(torch.stack([model(data.clean), model(data.corrupted)]), data)
    assert clean.shape == (data.n,)
    assert clean.mean() > -0.2  # ~ -0.04
    assert corrupt.mean() < -math.log(63) + 0.5  # the clean answers are not predicted
    torch.testing.assert_close(stacked, torch.stack([clean, corrupt]))


# ----- ground truth ------------------------------------------------------------------------------
def test_head_scores_reproduce_record(model):
    scores = groundtruth.head_scores(model, ModelConfig(**RECORD["model_config"]))
    for key, rows in GT_RECORD["scores"].items():
        torch.testing.assert_close(torch.tensor(scores[key]), torch.tensor(rows), atol=1e-3, rtol=0)
    prev, ind = groundtruth.select_heads(scores)
    assert prev == GT_RECORD["prev_token_heads"] == ["a0.h0", "a0.h3"]
    assert ind == GT_RECORD["induction_heads"] == ["a1.h0", "a1.h1", "a1.h2", "a1.h3"]


def test_thresholds_have_margin():
    """No head's score is within 0.08 of its threshold, so the choice is not a coin toss."""
    for key, thr in GT_RECORD["thresholds"].items():
        layers = GT_RECORD["scores"][key]
        rows = layers[:-1] if key == "prev_token" else layers[1:]
        for s in (s for row in rows for s in row):
            assert abs(s - thr) > 0.08, (key, s, thr)


def test_ground_truth_edges(task, model):
    g = PatchableModel(model).graph
    gt = task.ground_truth(g)
    assert len(gt) == 27
    assert {
        "embed->a0.h3.q",
        "embed->a0.h3.k",
        "embed->a0.h3.v",
        "a0.h3->a1.h1.k",
        "embed->a1.h1.q",
        "embed->a1.h1.v",
        "a1.h1->logits",
        "embed->logits",
    } <= gt
    assert not any(e.startswith(("a0.h1", "a0.h2")) or "a0.h1." in e or "a0.h2." in e for e in gt)
    assert not any(e.endswith(".k") and e.startswith("embed->a1") for e in gt)


def test_ground_truth_unsplit_is_union_of_roles(task, model):
    pm = PatchableModel(model)
    split = task.ground_truth(pm.graph)
    merged = task.ground_truth(pm.with_graph(GraphConfig(split_qkv=False)).graph)
    strip = {e.rsplit(".", 1)[0] if e.endswith((".q", ".k", ".v")) else e for e in split}
    assert merged == strip
    assert len(merged) == 19
    no_mlp = task.ground_truth(pm.with_graph(GraphConfig(include_mlp=False)).graph)
    assert no_mlp == split


def test_ground_truth_refuses_positions_and_other_shapes(task, model):
    pm = PatchableModel(model)
    with pytest.raises(ValueError, match="per-position"):
        task.ground_truth(pm.with_graph(GraphConfig(positions=25)).graph)
    with pytest.raises(ValueError, match="ablations"):
        task.ground_truth(pm.graph, "mean")
    from patching.graph import EdgeGraph

    with pytest.raises(ValueError, match="layers"):
        task.ground_truth(EdgeGraph(n_layers=3, n_heads=4, has_mlp=False))


# ----- faithfulness of the ground truth ----------------------------------------------------------
def _normalised(task, data, pm, ab, keep: set[str]) -> float:
    g = pm.graph

    def m(mask):
        with torch.no_grad():
            return task.metric(pm(data.clean, mask, ab), data).mean().item()

    clean, ablated = m(torch.ones(g.n_edges)), m(torch.zeros(g.n_edges))
    return (m(g.edge_mask(keep)) - ablated) / (clean - ablated)


def test_circuit_keeps_most_of_the_behaviour(task, data, patched):
    """Circuit alone (complement resample-ablated): 0.88 of the clean-vs-ablated gap."""
    pm, ab = patched
    frac = _normalised(task, data, pm, ab, task.ground_truth(pm.graph))
    assert 0.8 < frac < 1.05
    unsplit = pm.with_graph(GraphConfig(split_qkv=False))
    ab2 = unsplit.ablate("resample", data.clean, data.corrupted)
    assert 0.8 < _normalised(task, data, unsplit, ab2, task.ground_truth(unsplit.graph)) < 1.05


def test_ablating_induction_heads_destroys_it(task, data, patched):
    """Induction heads' outputs ablated, all else clean: 0.00 of the gap remains."""
    pm, ab = patched
    _, ind = task.heads()
    keep = set(pm.graph.edge_names) - {f"{h}->logits" for h in ind}
    assert _normalised(task, data, pm, ab, keep) < 0.1


ROLE_EFFECTS = {  # role -> (edges, lower, upper bound of the normalised metric when ablated)
    "prev->induction.k": (lambda ps, hs: {f"{p}->{i}.k" for p in ps for i in hs}, 0.0, 0.3),
    "embed->prev.v": (lambda ps, hs: {f"embed->{p}.v" for p in ps}, 0.0, 0.3),
    "embed->induction.q": (lambda ps, hs: {f"embed->{i}.q" for i in hs}, 0.0, 0.35),
    "embed->induction.v": (lambda ps, hs: {f"embed->{i}.v" for i in hs}, 0.3, 0.7),
    "embed->prev.q,k": (lambda ps, hs: {f"embed->{p}.{r}" for p in ps for r in "qk"}, 0.95, 1.05),
    "embed->logits": (lambda ps, hs: {"embed->logits"}, 0.95, 1.05),
}


@pytest.mark.parametrize("role", list(ROLE_EFFECTS))
def test_role_effects(task, data, patched, role):
    """How much each ground-truth role matters under resample ablation (numbers above)."""
    pm, ab = patched
    edges, lo, hi = ROLE_EFFECTS[role]
    keep = set(pm.graph.edge_names) - edges(*task.heads())
    assert lo < _normalised(task, data, pm, ab, keep) < hi


# ----- reproducibility ---------------------------------------------------------------------------
@pytest.mark.slow
def test_retraining_reproduces_checkpoint(model):
    """Same seed, same configs -> same behaviour (bit-identical on the recorded torch)."""
    cfg = ModelConfig(**RECORD["model_config"])
    retrained, record = train(cfg, TrainConfig(**RECORD["train_config"]))
    assert record["final_loss_first_half"] == pytest.approx(
        RECORD["final_loss_first_half"], abs=0.02
    )
    assert record["final_loss_second_half"] == pytest.approx(
        RECORD["final_loss_second_half"], abs=0.02
    )
    scores = groundtruth.head_scores(retrained, cfg)
    for key, rows in GT_RECORD["scores"].items():
        torch.testing.assert_close(torch.tensor(scores[key]), torch.tensor(rows), atol=0.02, rtol=0)
    assert list(groundtruth.select_heads(scores)) == [
        GT_RECORD["prev_token_heads"],
        GT_RECORD["induction_heads"],
    ]
