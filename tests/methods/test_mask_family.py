"""The mask-learning family (``sp``, ``edge-pruning``) and the Lagrangian target they share with
the descent loop: a circuit planted in a tiny model is found; configs are validated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.scoring import metrics
from methods import get_method
from methods.descent import HardConcreteGates, LagrangianTarget, descend
from methods.edge_pruning import EdgePruningConfig, top_k_mask
from methods.sp import SpConfig
from tests.methods.problems import planted_problem


@pytest.fixture(scope="module")
def planted():
    """The planted circuit of :func:`tests.methods.problems.planted_problem`."""
    return planted_problem()


@pytest.mark.parametrize(
    "key, config",
    [("sp", dict(steps=150)), ("edge-pruning", dict(steps=150, densities=(0.2, 0.5)))],
)
def test_the_planted_circuit_is_found(planted, key, config):
    problem, truth = planted
    method = get_method(key, **config)
    scores = method(problem).numpy()
    assert metrics.roc_auc(truth, scores, False) >= 0.95
    assert method.trace["steps"] >= 150 and np.isfinite(method.trace["final_loss"])


def test_edge_pruning_runs_once_per_density_and_reaches_each_target(planted):
    problem, _ = planted
    method = get_method("edge-pruning", steps=150, densities=(0.5, 0.1))
    method(problem)
    runs = method.trace["runs"]
    assert [r["target"] for r in runs] == [0.1, 0.5]
    for r in runs:  # the Lagrangian holds the expected density near its target
        assert abs(r["final_density"] - r["target"]) < 0.1, r


def test_the_lagrangian_target_ramps_and_its_multipliers_grow_against_the_gap():
    target = LagrangianTarget(0.2, warmup_steps=4, lr=0.5)
    assert [target.target_at(s) for s in (0, 1, 3, 10)] == pytest.approx([0.8, 0.6, 0.2, 0.2])
    gates = HardConcreteGates(10, 3.0)
    start = gates.penalty().item()
    trace = descend(gates, lambda m: 0 * m.sum(), target, steps=40, lr=0.1)
    assert trace.steps == 40 and start > 0.9
    assert target.multipliers[0].item() > 0  # density was above the target: priced up
    assert gates.penalty().item() < 0.6  # and the density falls towards it


def test_top_k_mask_keeps_the_k_largest():
    mask = top_k_mask(torch.tensor([0.1, 3.0, -1.0, 2.0]), 2)
    assert mask.tolist() == [False, True, False, True]


@pytest.mark.parametrize(
    "bad",
    [
        dict(lam=-1.0),
        dict(steps=0),
        dict(lr=0.0),
        dict(warmup=1.0),
        dict(patience=0),
        dict(gamma=0.1),
        dict(steps=2.5),
        dict(lam="big"),
    ],
)
def test_sp_config_is_validated(bad):
    with pytest.raises((ValueError, TypeError)):
        SpConfig(**bad)


@pytest.mark.parametrize(
    "bad",
    [
        dict(densities=()),
        dict(densities=(0.0,)),
        dict(densities=(1.5,)),
        dict(densities=[0.1]),
        dict(lagrangian_lr=0.0),
        dict(steps=0),
        dict(warmup=-0.1),
        dict(zeta=1.0),
    ],
)
def test_edge_pruning_config_is_validated(bad):
    with pytest.raises((ValueError, TypeError)):
        EdgePruningConfig(**bad)


def test_lagrangian_target_rejects_bad_arguments():
    for kw in (dict(target=1.5), dict(target=0.1, warmup_steps=0), dict(target=0.1, lr=0.0)):
        with pytest.raises(ValueError):
            LagrangianTarget(**kw)
