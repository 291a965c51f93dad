"""A learned (SIIT) model's folder: the low-level model, the compiled program it implements, the
correspondence between them, and the candidate edge set; and how the folder is written and read.

Folder layout (written by ``python -m tasks.siit.train``, checked by
``python -m tasks.siit.check``):

- ``model.safetensors`` (+ ``.sha256``): the low-level :class:`patching.hooked.HookedModel`;
- ``high.safetensors`` / ``high.json``: the tracr-compiled program (the high-level model);
- ``siit.json``: program, input distribution (``inputs``, ``first_answer``), low-level config,
  correspondence, candidate edges, training settings, the exact command;
- ``train_log.jsonl``: the training curve; ``check.json``: the acceptance report and the
  ground truth per ablation (``tasks.siit.check``).

Correspondence rule. tracr lays the program out in layers of one attention sublayer and one MLP;
the low-level model has ``max(2, tracr layers)`` layers of ``max(4, tracr heads)`` heads. Head
``h`` of tracr layer ``l`` corresponds to low-level head ``a{l}.h{h}``, tracr's MLP of layer ``l``
to ``m{l}``, the embedding to the embedding and the output to the logits. Every other low-level
component (the extra heads and layers, and the counterparts of tracr components with zero
weights) is outside the circuit. The candidate edges are the edges along which the compiled
weights connect (:func:`tasks.tracr_base.read_write_edges`, q/k/v split, position-free), mapped by
the rule; the shipped ground truth is the subset the checks find needed, per ablation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from patching.hooked import HookedConfig, HookedModel
from patching.names import parse_edge, without_role

MODEL_FILE = "model.safetensors"
HIGH_NAME = "high"
META_FILE = "siit.json"
CHECK_FILE = "check.json"
LOG_FILE = "train_log.jsonl"


@dataclass(frozen=True)
class LowLevelShape:
    """The low-level model's size (a GPT-2-style transformer: LayerNorm, GELU MLPs)."""

    d_model: int = 64
    d_head: int = 16
    min_heads: int = 4
    min_layers: int = 2
    d_mlp: int = 128


def low_level_config(high_cfg: dict, shape: LowLevelShape, seed: int) -> HookedConfig:
    return HookedConfig(
        n_layers=max(shape.min_layers, high_cfg["n_layers"]),
        d_model=shape.d_model,
        n_ctx=high_cfg["n_ctx"],
        d_head=shape.d_head,
        n_heads=max(shape.min_heads, high_cfg["n_heads"]),
        d_mlp=shape.d_mlp,
        act_fn="gelu",
        d_vocab=high_cfg["d_vocab"],
        d_vocab_out=high_cfg["d_vocab_out"],
        normalization_type="LN",
        attention_dir=high_cfg["attention_dir"],
        seed=seed,
        default_prepend_bos=False,
    )


def config_dict(cfg: HookedConfig) -> dict:
    d = asdict(cfg)
    d.pop("dtype", None)
    d.pop("device", None)
    return d


def circuit_nodes(edges: list[str]) -> list[str]:
    """The components (heads without their q/k/v role, MLPs) the candidate edges touch."""
    nodes = set()
    for name in edges:
        e = parse_edge(name)
        nodes.update({e.src.name, without_role(e.dst.name)})
    return sorted(nodes - {"embed", "logits"})


def correspondence(nodes: list[str]) -> dict[str, str]:
    """High-level component -> low-level component (the identity on names, see the module)."""
    return {n: n for n in nodes}


def save_model(model: HookedModel, folder: Path) -> Path:
    from safetensors.torch import save_file

    from core.checksum import write_sidecar

    path = folder / MODEL_FILE
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    write_sidecar(path)
    return path


def load_meta(folder: Path) -> dict:
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder} is not a SIIT model folder (no {META_FILE}); train one with "
            "`python -m tasks.siit.train --program NAME --out DIR`"
        )
    return json.loads(path.read_text())


def load_low(folder: Path, device: str = "cpu") -> HookedModel:
    from safetensors.torch import load_file

    from core.checksum import verify

    folder = Path(folder)
    meta = load_meta(folder)
    path = folder / MODEL_FILE
    verify(path, regenerate=meta.get("command", "python -m tasks.siit.train ..."))
    model = HookedModel(HookedConfig(**{**meta["low_config"], "init_weights": False}))
    model.load_state_dict(load_file(str(path)), strict=False)
    return model.to(device, print_details=False).eval()


def load_high(folder: Path, device: str = "cpu"):
    from models import tracr

    return tracr.load_model(HIGH_NAME, Path(folder), device)


def encode(meta: dict, seqs: list) -> torch.Tensor:
    """Token ids of input sequences (BOS first) under the compiled program's encoding."""
    enc = meta["high"]["input_encoding"]
    bos = enc[meta["high"]["bos"]]
    return torch.tensor([[bos] + [enc[str(t)] for t in s] for s in seqs], dtype=torch.long)
