"""The descent loop and its parts (``methods/descent.py``) on toy losses, without a model."""

from __future__ import annotations

import json
import math

import pytest
import torch

from methods.descent import (
    HardConcreteGates,
    LinearWarmup,
    PlateauStop,
    SigmoidGates,
    descend,
)

# ----- gates --------------------------------------------------------------------------------


def test_sigmoid_gates_at_init_give_sigmoid_init():
    gates = SigmoidGates(5, 3.0)
    expected = torch.full((5,), 1 / (1 + math.exp(-3.0)))
    torch.testing.assert_close(gates.sample(), expected)
    torch.testing.assert_close(gates.scores(), expected)
    assert gates.penalty().item() == pytest.approx(expected[0].item())
    assert gates.parameters() == [gates.theta] and gates.theta.requires_grad
    assert not gates.scores().requires_grad


def test_gates_take_an_int_init():
    assert SigmoidGates(3, 6).theta.dtype == torch.float32


def test_hard_concrete_scores_are_deterministic_and_the_chance_of_a_nonzero_gate():
    gates = HardConcreteGates(20_000, 0.5)
    state = torch.get_rng_state()
    a, b = gates.scores(), gates.scores()
    assert torch.equal(torch.get_rng_state(), state)  # scoring draws no random numbers
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    shift = (2 / 3) * math.log(0.1 / 1.1)  # beta * log(-gamma / zeta)
    assert a[0].item() == pytest.approx(1 / (1 + math.exp(-(0.5 - shift))))
    torch.manual_seed(0)
    nonzero = (gates.sample() > 0).float().mean().item()  # Monte Carlo over 20k gates
    assert nonzero == pytest.approx(a[0].item(), abs=0.01)
    assert gates.penalty().item() == pytest.approx(a[0].item())  # expected L0 share


def test_hard_concrete_samples_vary_and_reach_exact_zero_and_one():
    torch.manual_seed(0)
    gates = HardConcreteGates(1000, 0.0)
    s1, s2 = gates.sample(), gates.sample()
    assert not torch.equal(s1, s2)  # stochastic in training
    assert s1.min() == 0 and s1.max() == 1 and ((s1 > 0) & (s1 < 1)).any()
    assert torch.equal(HardConcreteGates(4, 20.0).deterministic(), torch.ones(4))
    assert torch.equal(HardConcreteGates(4, -20.0).deterministic(), torch.zeros(4))
    mid = HardConcreteGates(1, 0.0).deterministic()  # sigmoid(0) stretched: 0.5 * 1.2 - 0.1
    assert mid.item() == pytest.approx(0.5)


@pytest.mark.parametrize("bad", [dict(beta=0.0), dict(gamma=0.1), dict(zeta=1.0)])
def test_hard_concrete_rejects_bad_constants(bad):
    with pytest.raises(ValueError):
        HardConcreteGates(3, 0.0, **bad)


# ----- plateau stop and schedule ------------------------------------------------------------


def test_plateau_stop_works_for_losses_below_zero():
    flat = PlateauStop(tol=1e-3, patience=3)
    assert [flat(-2.0) for _ in range(4)] == [False, False, False, True]
    improving = PlateauStop(tol=1e-3, patience=3)
    assert not any(improving(-1.0 - 0.1 * k) for k in range(10))


def test_linear_warmup_ramps_then_holds():
    sched = LinearWarmup.over(lam=2.0, fraction=0.25, steps=20)
    assert sched.warmup_steps == 5
    assert [sched.lam_at(s) for s in range(7)] == [0.4, 0.8, 1.2, 1.6, 2.0, 2.0, 2.0]
    gates = SigmoidGates(4, 0.0)
    assert sched(0, gates).item() == pytest.approx(0.4 * 0.5)
    assert LinearWarmup.over(1.0, 0.0, 10).warmup_steps == 1  # at least one step


def _quadratic(target: torch.Tensor):
    return lambda m: ((m - target) ** 2).sum()


class _Recorder:
    """A schedule that adds nothing and records the steps it was called at."""

    warmup_steps = 4

    def __init__(self) -> None:
        self.steps: list[int] = []

    def __call__(self, step, gates):
        self.steps.append(step)
        return gates.penalty() * 0.0


def test_the_schedule_is_called_once_per_step_and_the_stop_waits_for_its_warmup():
    rec = _Recorder()
    never_improves = PlateauStop(tol=1e9, patience=1)  # would stop at once if consulted
    trace = descend(
        SigmoidGates(3, 0.0),
        _quadratic(torch.zeros(3)),
        rec,
        steps=10,
        lr=0.1,
        stop=never_improves,
    )
    # first consulted after step 4 (it records its baseline), stops after step 5
    assert rec.steps == [0, 1, 2, 3, 4]
    assert trace.steps == 5 and trace.stopped_early


def test_descend_fits_a_target_and_traces_the_run():
    target = torch.tensor([0.9, 0.1, 0.7])
    gates = SigmoidGates(3, 0.0)
    trace = descend(gates, _quadratic(target), LinearWarmup(0.0), steps=300, lr=0.1)
    torch.testing.assert_close(gates.scores(), target, atol=1e-3, rtol=0)
    assert trace.steps == 300 and not trace.stopped_early
    assert trace.initial_faithfulness == pytest.approx(((0.5 - target) ** 2).sum().item())
    assert trace.faithfulness < 1e-5 and trace.density == pytest.approx(target.mean().item())
    summary = json.loads(json.dumps(trace.summary()))
    assert summary["final_loss"] == trace.faithfulness and summary["steps"] == 300


def test_a_schedule_can_hold_the_density_at_a_target():
    """The hook a sparsity target plugs into: the schedule reads the current density."""
    target_density = 0.3

    def to_target(step, gates):
        return 10.0 * (gates.penalty() - target_density) ** 2

    to_target.warmup_steps = 1
    gates = SigmoidGates(8, 2.0)
    descend(gates, lambda m: m.new_zeros(()), to_target, steps=400, lr=0.05)
    assert gates.penalty().item() == pytest.approx(target_density, abs=0.01)


def test_expand_maps_the_gates_to_the_masks_the_loss_reads():
    seen = []

    def loss(m):
        seen.append(m.shape)
        return m.sum()

    descend(
        SigmoidGates(2, 0.0),
        loss,
        LinearWarmup(0.0),
        steps=2,
        lr=0.1,
        expand=lambda m: m[[0, 0, 1]],
    )
    assert seen == [torch.Size([3])] * 2


def test_backward_and_after_step_hooks_replace_the_gradient_and_see_each_update():
    gates = SigmoidGates(2, 0.0)
    updates = []

    def backward(step, faithfulness, term):
        gates.theta.grad = torch.tensor([1.0, -1.0])  # a gradient the loss would not give

    def after_step(step, before, after):
        updates.append((after[0] - before[0]).clone())

    trace = descend(
        gates,
        lambda m: m.sum(),
        LinearWarmup(0.0),
        steps=3,
        lr=0.1,
        backward=backward,
        after_step=after_step,
    )
    assert trace.steps == 3 and len(updates) == 3
    torch.testing.assert_close(sum(updates), gates.theta.detach())  # started at 0
    assert (updates[0] < 0).tolist() == [True, False]  # Adam went against the given gradient
