"""``ugs`` (Uniform Gradient Sampling, Li & Janson 2024; MIB's mask-learning baseline): its
sampler against the published definition, its gradient estimator against the exact gradient of
the expected loss, determinism, a planted circuit, and config validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.scoring import metrics
from methods import get_method
from methods.ugs import UgsConfig, UniformGates
from patching.prune import NodeIndex, prune_dangling
from tests.methods.problems import planted_problem


@pytest.fixture(scope="module")
def planted():
    return planted_problem()


def _gates(theta, **kw) -> UniformGates:
    g = UniformGates(len(theta), 0.0, **kw)
    with torch.no_grad():
        g.theta.copy_(torch.tensor(theta, dtype=g.theta.dtype))
    return g


def test_draws_follow_the_published_window():
    """m = clamp((p - u) / (p (1 - p)) + 1/2, 0, 1): 1 with probability p - w/2, 0 with
    probability 1 - p - w/2, uniform on [0, 1] inside (probability w); E[m] = p. By hand at
    a few draws, then in distribution."""
    g = _gates([0.0, 2.0])  # p = 0.5 (w 0.25), p = 0.881 (w 0.105)
    u = torch.tensor([[0.3, 0.5], [0.5, 0.85], [0.6, 0.95]])
    value, inside = g.draw(u)
    p1 = torch.sigmoid(torch.tensor(2.0))
    w1 = p1 * (1 - p1)
    expected = torch.tensor(
        [
            [1.0, 1.0],  # 0.3 < 0.5 - 0.125: kept; 0.5 < 0.881 - 0.053: kept
            [0.5, ((p1 - 0.85) / w1 + 0.5).item()],  # both inside the window
            [0.5 - 0.1 / 0.25, 0.0],  # 0.6 inside; 0.95 > 0.881 + 0.053: dropped
        ]
    )
    torch.testing.assert_close(value, expected)
    assert inside.tolist() == [[False, False], [True, True], [True, False]]

    g = _gates([0.7] * 4, samples=200_000)
    torch.manual_seed(0)
    m = g.sample().detach()
    p = torch.sigmoid(torch.tensor(0.7)).item()
    w = p * (1 - p)
    assert m.mean().item() == pytest.approx(p, abs=3e-3)
    assert (m == 1).float().mean().item() == pytest.approx(p - w / 2, abs=3e-3)
    assert (m == 0).float().mean().item() == pytest.approx(1 - p - w / 2, abs=3e-3)
    mid = m[(m > 0) & (m < 1)]
    assert mid.mean().item() == pytest.approx(0.5, abs=5e-3)  # uniform inside
    assert mid.var().item() == pytest.approx(1 / 12, abs=2e-3)


def test_gradient_estimates_that_of_the_expected_loss_over_bernoulli_circuits():
    """With ``normalize``, the mean over samples of the gradient is an unbiased estimate of
    d E_{m ~ Bernoulli(p)}[L(m)] / d theta. L = m0^2 + m0 m1: E[L] = p0 + p0 p1, so
    d/dtheta0 = (1 + p1) p0 (1 - p0) and d/dtheta1 = p0 p1 (1 - p1). A plain sigmoid mask
    (m = p) would give (2 p0 + p1) p0 (1 - p0) for theta0: the uniform draw is what differs."""
    g = _gates([1.5, -0.8], samples=400_000)
    torch.manual_seed(1)
    m = g.sample()
    (m[:, 0] ** 2 + m[:, 0] * m[:, 1]).mean().backward()
    p0, p1 = torch.sigmoid(torch.tensor([1.5, -0.8])).tolist()
    exact = [(1 + p1) * p0 * (1 - p0), p0 * p1 * (1 - p1)]
    assert g.theta.grad.tolist() == pytest.approx(exact, rel=0.02)
    plain = (2 * p0 + p1) * p0 * (1 - p0)
    assert abs(g.theta.grad[0].item() - plain) > 0.05  # the test can tell the two apart

    # without normalize the gradient is that times the share of draws inside the window
    g2 = _gates([1.5, -0.8], samples=400_000, normalize=False)
    torch.manual_seed(1)
    m = g2.sample()
    (m[:, 0] ** 2 + m[:, 0] * m[:, 1]).mean().backward()
    w = [p0 * (1 - p0), p1 * (1 - p1)]
    assert g2.theta.grad.tolist() == pytest.approx(
        [e * s for e, s in zip(exact, w, strict=True)], rel=0.02
    )


def test_drawn_circuits_are_pruned_of_dangling_edges(planted):
    problem, _ = planted
    names = problem.model.graph.edge_names
    g = UniformGates(problem.n_edges, 0.0, samples=64, nodes=NodeIndex.of(names))
    torch.manual_seed(0)
    m = g.sample().detach()
    kept = (m > 0).numpy()
    assert (prune_dangling(names, kept) == kept).all()
    unpruned = UniformGates(problem.n_edges, 0.0, samples=64)
    torch.manual_seed(0)
    raw = (unpruned.sample().detach() > 0).numpy()
    assert (raw >= kept).all() and (raw != kept).any()  # pruning removed some edges


def test_deterministic_given_the_seed(problem):
    a = get_method("ugs", steps=15)(problem)
    b = get_method("ugs", steps=15)(problem)
    c = get_method("ugs", steps=15, seed=1)(problem)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)


def test_scores_are_the_keep_probabilities(problem):
    method = get_method("ugs", steps=15)
    scores = method(problem)
    assert scores.shape == (problem.n_edges,)
    assert ((scores > 0) & (scores < 1)).all()
    trace = method.trace
    assert trace["steps"] == 15 and not trace["stopped_early"]
    assert trace["samples"] == 8 and 0 < trace["in_window"] < 1
    assert trace["final_density"] == pytest.approx(scores.double().mean().item(), rel=1e-5)


def test_the_planted_circuit_is_found(planted):
    problem, truth = planted
    method = get_method("ugs", steps=150)
    scores = method(problem).numpy()
    assert metrics.roc_auc(truth, scores, False) >= 0.95
    # every edge of a silent head has no effect: its keep probability only falls
    assert scores[~truth].max() < 0.73 - 0.2  # started at sigmoid(1) = 0.73
    assert np.median(scores[truth]) > np.median(scores[~truth])


@pytest.mark.parametrize(
    "bad",
    [
        dict(samples=0),
        dict(window=0.0),
        dict(window=2.5),
        dict(clip=0.0),
        dict(lam=-0.1),
        dict(steps=0),
        dict(lr=0.0),
        dict(samples=2.5),
        dict(normalize="yes"),
    ],
)
def test_config_is_validated(bad):
    with pytest.raises((ValueError, TypeError)):
        UgsConfig(**bad)


def test_config_defaults():
    c = UgsConfig()
    assert (c.init, c.lam, c.lr, c.steps, c.samples, c.window, c.clip) == (
        1.0,
        0.01,
        0.05,
        300,
        8,
        1.0,
        5.0,
    )
    assert c.normalize and c.prune_dangling and c.warmup == 0.0
