"""Train and held-out splits: disjoint for a finite pool, a fixed fresh seed for generated
tasks, generic slicing of every per-example field, and ``--n`` counting train examples."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from tasks.base import HELDOUT_SEED, TaskData, get_task
from tasks.splits import build_heldout, pool_split


def _rows(t: Tensor) -> set[tuple]:
    return {tuple(r) for r in t.tolist()}


def _data(n: int = 5) -> TaskData:
    """Right-padded rows of alternating lengths 2 and 3, the answer read at the first token."""
    clean = torch.arange(n * 3).reshape(n, 3)
    answer_mask = torch.zeros(n, 3, dtype=torch.bool)
    answer_mask[:, 0] = True
    return TaskData(
        clean,
        clean + 100,
        answer_mask,
        clean + 200,
        wrong=clean + 300,
        reference=torch.zeros(2, 3, dtype=torch.long),
        extra={"target": clean.float() / 10},
        attention_mask=torch.arange(3) < 2 + torch.arange(n)[:, None] % 2,
    )


def test_select_slices_every_per_example_field():
    data = _data()
    index = torch.tensor([3, 0])
    part = data.select(index)
    assert isinstance(part, TaskData) and part.n == 2
    for name in ("clean", "corrupted", "answer_mask", "answers", "wrong", "attention_mask"):
        assert torch.equal(getattr(part, name), getattr(data, name)[index]), name
    assert torch.equal(part.extra["target"], data.extra["target"][index])
    assert torch.equal(part.reference, data.reference)  # the ablation population stays whole
    assert part.select(slice(0, 1)).clean.tolist() == [data.clean[3].tolist()]


def test_select_refuses_a_field_that_is_not_per_example():
    data = _data()
    bad = TaskData(data.clean, data.corrupted, data.answer_mask, data.answers,
                   extra={"table": torch.zeros(7)})  # fmt: skip
    with pytest.raises(ValueError, match=r"extra\['table'\].*NOT_PER_EXAMPLE"):
        bad.select(torch.tensor([0]))


def test_pool_split_is_a_disjoint_cover():
    train, held = pool_split(81)
    assert len(held) == 27 and len(train) == 54
    assert set(train.tolist()).isdisjoint(held.tolist())
    assert sorted(train.tolist() + held.tolist()) == list(range(81))
    assert torch.equal(pool_split(81)[1], held)  # fixed
    assert not torch.equal(pool_split(81, seed=HELDOUT_SEED + 1)[1], held)
    with pytest.raises(ValueError, match="too small"):
        pool_split(2)


@pytest.mark.parametrize("key", ["tracr-reverse", "tracr-proportion"])
def test_tracr_holds_out_a_third_of_its_inputs(key):
    task = get_task(key)
    pool = len(task.inputs())
    assert task.n_heldout() == pool // 3 and task.max_train() == pool - pool // 3
    assert task.n_default() == task.max_train()  # default_n is the pool: clipped to the train part
    held = task.make_heldout()
    train = task.make_data(task.max_train(), seed=0)
    assert held.n == task.n_heldout() and len(_rows(held.clean)) == held.n
    assert _rows(train.clean).isdisjoint(_rows(held.clean))
    # corrupted partners come from the same split: no held-out input shows up in training
    assert _rows(train.corrupted) <= _rows(train.clean)
    assert _rows(held.corrupted) <= _rows(held.clean)
    assert _rows(train.clean) | _rows(held.clean) == _rows(task.all_data().clean)
    for seed in (1, 2):
        assert _rows(task.make_data(10, seed).clean) <= _rows(train.clean)
    with pytest.raises(ValueError, match="held out for evaluation"):
        task.make_data(task.max_train() + 1)


def test_a_generated_task_draws_its_heldout_split_with_a_fixed_fresh_seed():
    task = get_task("induction")
    held = task.make_heldout()
    assert held.n == task.n_heldout() == task.default_n
    assert torch.equal(held.clean, task.make_heldout().clean)  # the same for every run
    for seed in range(3):
        assert not torch.equal(task.make_data(held.n, seed).clean, held.clean)


def test_build_heldout_reuses_the_model_on_the_heldout_data():
    from patching.graph import GraphOptions
    from tasks.problem import build_problem

    task = get_task("tracr-reverse")
    problem = build_problem(task, GraphOptions(), 20, 0, "zero")
    held = build_heldout(task, problem, "zero")
    assert held.model is problem.model and held.data.n == 27
    assert _rows(held.data.clean).isdisjoint(_rows(problem.data.clean))
    assert held.has_signal


def test_n_counts_train_examples_and_too_many_is_a_usage_error(tmp_path, capsys):
    from eval import run

    out = tmp_path / "run"
    argv = ["--tasks", "tracr-reverse", "--methods", "random", "--n", "55", "--out", str(out)]
    assert run.main(argv) == 2
    assert "at most 54 train examples" in capsys.readouterr().err
    assert not (out / "records.csv").exists()
