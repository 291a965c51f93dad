"""``models.resolve``: every kind of name (shipped, random, hub, local) gives a source that says
whether it loads here, loads it and gives its tokenizer; unknown names are refused with the
choices; and ``patching/adapters/`` only reads models, it makes none."""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest
import torch

from models import ModelSource, UnknownModelError, hub, names, register_source, resolve
from models.families import FAMILIES
from models.random import tiny_hf_model
from patching import PatchableModel

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "data" / "shipped_logits.safetensors"


def _task_of_program(program: str):
    from tasks import TASKS

    keys = [k for k in TASKS.keys() if getattr(TASKS.get(k), "program", None) == program]
    assert len(keys) == 1, keys
    return TASKS.get(keys[0])()


# ----- shipped ----------------------------------------------------------------------------------
def test_every_shipped_model_is_a_source():
    from tasks.siit.task import shipped_folders
    from tasks.tracr_programs import PROGRAMS

    siit = {f"siit/{f.parent.name}/{f.name}" for f in shipped_folders()}
    assert len(siit) >= 12
    assert set(names("shipped")) == {"induction"} | {f"tracr/{p}" for p in PROGRAMS} | siit


SHIPPED = ["induction", "tracr/hist", "tracr/pair_balance", "tracr/proportion", "tracr/reverse",
           "tracr/shuffle_dyck", "tracr/sort_unique"]  # fmt: skip


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_source_gives_the_stored_logits_and_the_tasks_model(name):
    """Logits equal those stored from TransformerLens 3.9 (``tests/data/shipped_logits``) and
    those of the model the task runs; the digest is the manifest's."""
    from safetensors.torch import load_file

    from tasks import get_task

    source = resolve(name)
    assert source.kind == "shipped" and source.name == name and source.description
    assert source.unavailable_reason() is None and source.tokenizer() is None
    ref = load_file(str(REFERENCE))
    short = name.removeprefix("tracr/")
    task = get_task("induction") if name == "induction" else _task_of_program(short)
    model = source.load("cpu")
    with torch.no_grad():
        logits = model(ref[f"{short}.tokens"])
        torch.testing.assert_close(logits, ref[f"{short}.logits"], atol=1e-6, rtol=1e-6)
        assert torch.equal(logits, task.load_model("cpu")(ref[f"{short}.tokens"]))
    (weights,) = source.weight_files()
    manifest = json.loads((ROOT / "core" / "weights_manifest.json").read_text())
    assert source.digest() == manifest[weights.relative_to(ROOT).as_posix()]


def test_shipped_source_loads_in_another_dtype():
    model = resolve("tracr/reverse").load(dtype=torch.float64)
    assert next(model.parameters()).dtype == torch.float64


def test_a_registered_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    (tmp_path / "induction").mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve("induction").kind == "shipped"


# ----- random -----------------------------------------------------------------------------------
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_random_family_source_runs_the_patched_forward(family):
    source = resolve(f"random/{family}")
    assert source.kind == "random" and source.unavailable_reason() is None
    assert source.tokenizer() is None and source.digest() is None
    model = source.load("cpu")
    assert model.config.model_type == FAMILIES[family].model_type
    # the same weights as the tests' tiny model of that family
    ref = tiny_hf_model(family)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), ref.parameters(), strict=True))
    pm = PatchableModel(model)
    tokens = torch.randint(0, pm.cfg.d_vocab, (2, 5), generator=torch.Generator().manual_seed(0))
    corrupt = torch.randint(0, pm.cfg.d_vocab, (2, 5), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = pm(tokens, torch.ones(pm.graph.n_edges), pm.ablate("resample", tokens, corrupt))
        want = model(tokens).logits
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_patchable_model_takes_a_name():
    pm = PatchableModel("random/llama")
    assert pm.cfg.family == "llama" and pm.graph.n_edges > 0
    assert next(resolve("random/gpt2").load(dtype=torch.float64).parameters()).dtype == (
        torch.float64
    )


def test_random_shapes_for_speed_are_sources():
    """The speed benchmarks' models (not built here: 124M and 1.2B parameters)."""
    assert {"random/gpt2-small", "random/llama-3.2-1b"} <= set(names("random"))
    assert resolve("random/llama-3.2-1b").kind == "random"
    cfg = FAMILIES["llama"].config("3.2-1b")
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_key_value_heads) == (16, 2048, 8)


# ----- unknown names ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["no-such-model", "tracr-reverse", "random/no-such-family", ""])
def test_an_unknown_name_is_refused_with_the_choices(name):
    with pytest.raises(ValueError) as exc:
        resolve(name)
    assert isinstance(exc.value, UnknownModelError)
    if name:
        message = str(exc.value)
        assert "tracr/reverse" in message and "induction" in message
        assert "random/llama" in message and "hub name" in message and "local folder" in message


def test_a_close_name_is_suggested():
    with pytest.raises(ValueError, match="Did you mean: tracr/reverse"):
        resolve("tracr-reverse")


# ----- hub --------------------------------------------------------------------------------------
def test_hub_names_resolve_without_network():
    for name in ("gpt2", "Qwen/Qwen2.5-0.5B", "EleutherAI/pythia-70m"):
        source = resolve(name)
        assert source.kind == "hub" and source.name == name


def test_an_uncached_hub_model_offline_says_why_without_hanging(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "hub_reachable", pytest.fail)  # offline: never probed
    start = time.perf_counter()
    reason = resolve("circuitbench-tests/no-such-model").unavailable_reason()
    assert time.perf_counter() - start < 5
    assert "HF_HUB_OFFLINE" in reason and "weights" in reason and "tokenizer" in reason


# ----- local ------------------------------------------------------------------------------------
def test_a_save_pretrained_folder_loads(tmp_path, monkeypatch):
    saved = tiny_hf_model("gpt2", seed=5)
    saved.save_pretrained(tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    source = resolve("tiny")  # a relative path: the source names it absolutely
    assert source.kind == "local" and source.name == str(tmp_path / "tiny")
    assert source.unavailable_reason() is None and source.digest() is not None
    assert resolve(str(tmp_path / "tiny")).digest() == source.digest()
    tokens = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        torch.testing.assert_close(source.load()(tokens).logits, saved(tokens).logits)


def test_a_folder_without_a_model_says_why(tmp_path):
    source = resolve(str(tmp_path))
    assert source.kind == "local" and "without config.json" in source.unavailable_reason()
    with pytest.raises(OSError, match="without config.json"):
        source.load()
    missing = resolve("/no/such/folder")
    assert missing.kind == "local" and "no such folder" in missing.unavailable_reason()
    with pytest.raises(OSError, match="no such folder"):
        missing.load()


# ----- the registry hook ------------------------------------------------------------------------
def test_register_source_adds_a_name(monkeypatch):
    def make() -> ModelSource:
        return ModelSource(
            "siit/test/0", "shipped", "a test model", lambda device, dtype: tiny_hf_model("llama")
        )

    from models.source import SOURCES

    register_source("siit/test/0", make)
    try:
        assert resolve("siit/test/0").description == "a test model"
        assert "siit/test/0" in names("shipped")
        with pytest.raises(ValueError, match="already registered"):
            register_source("siit/test/0", make)
        with pytest.raises(ValueError, match="unknown model 'siit/test/1'"):
            resolve("siit/test/1")  # a namespace of registered sources is never a hub name
    finally:
        SOURCES.unregister("siit/test/0")


# ----- the tasks take their models from here ----------------------------------------------------
def test_tasks_refuse_a_model_they_cannot_use():
    from tasks.configured import ModelOptionError, with_model
    from tasks.ioi import IOITask

    assert "no tokenizer" in IOITask(model="random/llama").unavailable_reason()
    with pytest.raises(ModelOptionError, match="unknown model 'no-such-model'"):
        with_model(["ioi"], "no-such-model")


# ----- adapters read, they don't make -----------------------------------------------------------
MAKING_CALLS = {"from_config", "from_pretrained", "save_pretrained", "save_file", "load_file",
                "manual_seed", "HookedModel", "HookedConfig", "HookedTransformer"}  # fmt: skip


def _making(path: Path) -> list[str]:
    """What in ``path`` builds, loads or writes a model: an import from safetensors or of a model
    or config class, or a call of one of :data:`MAKING_CALLS` or of a ``...Config`` class."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("safetensors"):
            found.append(f"imports from {node.module}")
        if isinstance(node, ast.ImportFrom | ast.Import):
            for alias in node.names:
                if alias.name in MAKING_CALLS or alias.name.startswith("AutoModel"):
                    found.append(f"imports {alias.name}")
        if isinstance(node, ast.Call):
            f = node.func
            called = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if called in MAKING_CALLS or called.endswith("Config"):
                found.append(f"calls {called} (line {node.lineno})")
            looked_up = getattr(node.args[0], "id", "") if node.args else ""
            if called == "getattr" and looked_up in ("transformers", "transformer_lens"):
                found.append(f"looks up a class of {node.args[0].id} (line {node.lineno})")
    return found


def test_adapters_make_no_models():
    adapters = sorted((ROOT / "patching" / "adapters").glob("*.py"))
    assert adapters and {p.stem for p in adapters} >= {"hf", "tl", "native", "spec"}
    makers = {p.name: _making(p) for p in adapters}
    assert not any(makers.values()), f"model makers belong in models/: {makers}"


def test_the_maker_check_can_fail():
    assert _making(ROOT / "models" / "random.py")  # tiny_hf_model builds from a config
    assert any("safetensors" in m for m in _making(ROOT / "models" / "tracr.py"))


def test_every_family_has_a_reader_and_a_reference():
    """What README "Adding a model family" lists: a family file, a reader in the adapter, an
    edge-by-edge reference in the tests; none of the three without the others."""
    from patching.adapters.hf import FAMILIES as READERS
    from tests.patching.reference_families import FAMILIES as REFERENCES

    types = {f.model_type for f in FAMILIES.values()}
    assert types == set(READERS) == set(REFERENCES)
