"""``python -m patching.verify``: the user-facing exactness check and the graph-size table."""

from __future__ import annotations

import json

import pytest

from models.random import tiny_hf_model
from patching import verify


@pytest.mark.parametrize("family", sorted(verify.FAMILY_KEYS))
def test_tiny_family_passes(family, capsys):
    assert verify.main(["--family", family]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["family"] == verify.FAMILY_KEYS[family]
    for d in out["max_abs_diff"].values():
        assert 0 <= d <= out["tolerance"] < 1e-3
    assert out["node_patch_effect"] > 0.1  # the node-level check patches something


def test_local_path_is_loaded_and_checked(tmp_path, capsys):
    tiny_hf_model("llama").save_pretrained(tmp_path)
    assert verify.main(["--model", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["n_edges"] == 262


def test_a_failed_check_exits_nonzero(monkeypatch, capsys):
    import torch

    monkeypatch.setitem(verify.REL_TOL, torch.float32, 1e-12)  # below float32 rounding
    assert verify.main(["--family", "gemma2"]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False


def test_unloadable_model_reports_the_reason(capsys):
    assert verify.main(["--model", "/nonexistent/dir"]) == 2
    assert "could not load" in json.loads(capsys.readouterr().out)["error"]


@pytest.mark.parametrize(
    ("name", "n_sources", "n_edges"),
    [
        ("gpt2-small", 157, 32491),  # MIB's GPT-2 small graph
        ("pythia-160m", 157, 32491 - 12 * 12),  # parallel blocks: no head -> own-layer MLP
        ("qwen2.5-0.5b", 361, 179749),
        ("gemma-2-2b", 235, 74218),
        ("llama-3.1-8b", 1057, 1592881),
    ],
)
def test_shape_of_published_models(name, n_sources, n_edges, capsys):
    assert verify.main(["--shape-of", name]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["n_sources"], out["n_edges"]) == (n_sources, n_edges)
