"""The learned-ground-truth (SIIT) models: the trainer on a tiny program, the acceptance checks
(with a planted failure: a model trained without the strict losses), and the shipped tasks'
edge-level ground truth, checked through the evaluator's own path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.checksum import sha256_file
from patching.graph import GraphConfig
from patching.names import parse_edge
from tasks.siit import check as chk
from tasks.siit import model as mdl
from tasks.siit.programs import resolve
from tasks.siit.task import SiitTask, register_shipped, shipped_folders, task_key
from tasks.siit.train import TrainConfig, main, train

DATA = Path(__file__).parents[1] / "data"
TINY = f"{DATA / 'siit_tiny_program.py'}:TINY"
PLANTED = DATA / "siit_planted_nostrict"
SHAPE = mdl.LowLevelShape(d_model=16, d_head=4, d_mlp=32)
QUICK = TrainConfig(steps=20, batch=8, eval_every=10, min_steps=10_000)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("siit") / "m"
    torch.set_num_threads(1)
    ev = train(resolve(TINY), out, seed=3, cfg=QUICK, shape=SHAPE, log=lambda _: None)
    return out, ev


def test_trainer_writes_a_complete_folder_from_a_users_program(tiny_run):
    out, ev = tiny_run
    meta = mdl.load_meta(out)
    for name in (
        mdl.MODEL_FILE,
        mdl.MODEL_FILE + ".sha256",
        "high.safetensors",
        "high.json",
        mdl.LOG_FILE,
        mdl.META_FILE,
    ):
        assert (out / name).is_file(), name
    assert meta["program"] == "tiny_same" and meta["seed"] == 3
    assert len(meta["inputs"]) == 8
    cfg = meta["low_config"]
    assert cfg["n_layers"] >= 2 and cfg["n_heads"] >= 4 and cfg["normalization_type"] == "LN"
    assert cfg["act_fn"] == "gelu" and cfg["d_model"] == 16
    # the correspondence maps each circuit node of the program to a low-level component
    assert set(meta["correspondence"]) == set(meta["circuit_nodes"]) == {"a0.h0", "m0"}
    assert all(parse_edge(e) for e in meta["candidate_edges"])
    log = [json.loads(line) for line in (out / mdl.LOG_FILE).read_text().splitlines()]
    assert [e["step"] for e in log] == [10, 20]
    assert set(ev) >= {"behaviour", "iit/a0.h0", "iit/m0", "joint_resample", "joint_mean"}
    low = mdl.load_low(out)
    assert low.cfg.d_vocab_out == 2


def test_training_is_seeded_and_deterministic(tiny_run, tmp_path):
    out, _ = tiny_run
    again = tmp_path / "again"
    train(resolve(TINY), again, seed=3, cfg=QUICK, shape=SHAPE, log=lambda _: None)
    assert sha256_file(again / mdl.MODEL_FILE) == sha256_file(out / mdl.MODEL_FILE)
    other = tmp_path / "other"
    train(resolve(TINY), other, seed=4, cfg=QUICK, shape=SHAPE, log=lambda _: None)
    assert sha256_file(other / mdl.MODEL_FILE) != sha256_file(out / mdl.MODEL_FILE)


def test_training_lowers_every_loss(tmp_path):
    cfg = TrainConfig(steps=60, batch=8, eval_every=30, min_steps=10_000, lr=3e-3)
    train(resolve(TINY), tmp_path / "m", seed=0, cfg=cfg, shape=SHAPE, log=lambda _: None)
    log = [json.loads(x) for x in (tmp_path / "m" / mdl.LOG_FILE).read_text().splitlines()]
    first, last = log[0], log[-1]
    assert last["loss_behaviour"] < first["loss_behaviour"]
    assert last["behaviour"] >= first["behaviour"]


def test_cli_refuses_bad_programs_and_a_used_folder(tmp_path, capsys):
    assert main(["--program", "nope", "--out", str(tmp_path / "a")]) == 2
    assert "unknown program 'nope'" in capsys.readouterr().err
    assert (
        main(
            [
                "--program",
                f"{DATA / 'siit_tiny_program.py'}:NOT_A_PROGRAM",
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 2
    )
    assert "not a RaspProgram" in capsys.readouterr().err
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("")
    assert main(["--program", "hist", "--out", str(tmp_path / "c")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert chk.main([str(tmp_path / "c")]) == 2
    assert "not a SIIT model folder" in capsys.readouterr().err


def test_planted_failure_without_strict_losses_fails_joint_sufficiency():
    """Behaviour and interchange hold (IIT alone learns them), but cutting every edge outside
    the program's wiring at once breaks the output: the model is rejected."""
    report = chk.check(PLANTED)
    assert report["checks"]["behaviour"] and report["checks"]["interchange"]
    assert not report["checks"]["resample_sufficiency"]
    assert not report["passes"]
    assert report["ablations"]["resample"]["joint_sufficiency_truth"] < chk.LEVEL


def test_pairs_never_pair_an_input_with_itself():
    idx = torch.arange(10, 20)
    base, src = chk.pairs(idx, seed=0, n_partners=5)
    assert len(base) == 50 and (base != src).all()
    assert set(src.tolist()) <= set(idx.tolist())


# ----- the shipped models ---------------------------------------------------------------------
SHIPPED = shipped_folders()


def test_at_least_six_programs_with_two_models_each_are_shipped():
    by_program: dict[str, int] = {}
    for folder in SHIPPED:
        by_program[folder.parent.name] = by_program.get(folder.parent.name, 0) + 1
    assert len(by_program) >= 6, by_program
    assert all(n >= 2 for n in by_program.values()), by_program
    keys = register_shipped()
    assert all(k.startswith("siit-") for k in keys) and len(keys) == len(SHIPPED)


@pytest.mark.parametrize("folder", SHIPPED, ids=[task_key(f) for f in SHIPPED])
def test_shipped_truth_is_jointly_sufficient_through_the_evaluators_path(folder):
    """Independent of the checks' code: the task's problem (train data, the evaluator's patched
    model and ablation) with only the ground-truth edges clean keeps the program's output."""
    from patching.graph import GraphOptions
    from tasks.problem import build_problem

    task = SiitTask(folder, task_key(folder))
    report = json.loads((folder / mdl.CHECK_FILE).read_text())
    assert report["passes"] and "resample" in task.ablations
    for ablation in task.ablations:
        truth = task.truth(ablation)
        assert set(truth) <= set(task.info["candidate_edges"])
        dropped = report["ablations"][ablation]["dropped"]
        assert set(truth) | set(dropped) == set(task.info["candidate_edges"])
        problem = build_problem(task, GraphOptions(), task.max_train(), 0, ablation)
        graph = problem.model.graph
        assert task.ground_truth(graph, ablation) == set(truth)
        keep = graph.edge_mask(truth)
        with torch.no_grad():
            out = problem.model(problem.data.clean, keep, problem.ablation).argmax(-1)
        mask = problem.data.answer_mask
        acc = (out[mask] == problem.data.answers[mask]).float().mean().item()
        assert acc >= 0.98, (ablation, acc)
        # the projection without the q/k/v split merges a head's three inputs into one
        merged = task.ground_truth(
            problem.model.with_graph(GraphConfig(split_qkv=False)).graph, ablation
        )
        assert merged == {e.replace(".q", "").replace(".k", "").replace(".v", "") for e in truth}


def test_shipped_models_resolve_by_name():
    from models import resolve

    folder = SHIPPED[0]
    source = resolve(f"siit/{folder.parent.name}/{folder.name}")
    assert source.unavailable_reason() is None
    model = source.load()
    ref = mdl.load_low(folder)
    tokens = torch.zeros(2, model.cfg.n_ctx, dtype=torch.long)
    assert torch.equal(model(tokens), ref(tokens))
