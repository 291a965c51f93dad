"""Compiled tracr programs as hookable transformer models: compile, convert, write and load.

Task-agnostic: a :class:`RaspProgram` (a RASP program and its compiler settings) in, a
:class:`patching.hooked.HookedModel` (TransformerLens 3 ``HookedTransformer`` layout) out.
tracr (and with it JAX and Haiku) is needed only to (re)compile:
:func:`write_weights` stores ``<name>.safetensors`` (the ``HookedTransformer`` state dict) and
``<name>.json`` (config, token encodings, residual-stream labels); loading reads those two files
and needs only torch. Which programs exist and where their weights ship is the tasks' business
(``tasks/tracr_programs.py``).

Conversion. tracr assembles a model of ``num_layers`` layers, each an attention sublayer then an
MLP sublayer; a craft block with no attention (or no MLP) in a layer gets zero weights there. Each
tracr layer becomes one TransformerLens block with the same weights: ``W_Q/W_K/W_V`` are tracr's
query/key/value ``w`` split per head, ``W_O`` the ``linear`` ``w``, ``W_in``/``W_out`` the MLP's
``linear_1``/``linear_2``; biases (all zero in tracr) are copied too. No LayerNorm, ReLU MLPs,
standard positional embeddings (tracr's BOS position has a zero positional row). tracr's
``MultiHeadAttention`` divides the attention logits by ``sqrt(key_size)``, so the TL model keeps
``use_attn_scale=True`` with ``d_head = key_size``: that is TL's ``sqrt(d_head)`` and matches tracr
exactly (``use_attn_scale=False`` would make every softmax ``sqrt(key_size)`` times colder). The
attention direction follows the program's ``causal`` setting. The unembedding is tracr's
projection of the residual stream on the output space: the output tokens for a categorical
program (logits over them), the single numeric output direction for a numerical one
(``d_vocab_out = 1``).

tracr-pypi names every residual direction ``<sop name>_<unique id>:<value>``; the ids depend on
how many RASP expressions the process built before, so the stored labels drop them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

BOS = "BOS"


@dataclass(frozen=True)
class RaspProgram:
    """A RASP program and the settings it is compiled with.

    output: name of the program's output SOp. build: returns the program (a ``rasp.SOp``) and
    imports tracr itself, so describing a program needs no JAX.
    """

    name: str
    vocab: tuple
    max_seq_len: int
    causal: bool
    output: str
    build: Callable[[], object]


def normalize_label(label: str) -> str:
    """``opp_idx-1_17:3`` -> ``opp_idx-1:3``, ``length_8_selector_width_attn_output`` ->
    ``length_selector_width_attn_output`` (drop tracr-pypi's per-process unique ids; the SOp
    names of a program must not contain ``_<digits>`` themselves)."""
    head, sep, value = label.partition(":")
    return re.sub(r"_\d+(?=_|$)", "", head) + sep + value


# ----- compiling (needs tracr / JAX) ------------------------------------------------------------
def compile_program(program: RaspProgram):
    """Compile ``program`` with tracr (imports JAX); returns tracr's assembled model."""
    from tracr.compiler import compiling

    return compiling.compile_rasp_to_model(
        program.build(),
        vocab=set(program.vocab),
        max_seq_len=program.max_seq_len,
        causal=program.causal,
        compiler_bos=BOS,
    )


def _block_weights(p: dict, layer: int, H: int, dh: int, d_model: int) -> dict[str, np.ndarray]:
    """One tracr layer's attention and MLP weights under TransformerLens names."""
    attn, mlp = f"transformer/layer_{layer}/attn", f"transformer/layer_{layer}/mlp"
    sd: dict[str, np.ndarray] = {}
    for tl, tr in (("Q", "query"), ("K", "key"), ("V", "value")):
        sd[f"blocks.{layer}.attn.W_{tl}"] = (
            p[f"{attn}/{tr}"]["w"].reshape(d_model, H, dh).transpose(1, 0, 2)
        )
        sd[f"blocks.{layer}.attn.b_{tl}"] = p[f"{attn}/{tr}"]["b"].reshape(H, dh)
    sd[f"blocks.{layer}.attn.W_O"] = p[f"{attn}/linear"]["w"].reshape(H, dh, d_model)
    sd[f"blocks.{layer}.attn.b_O"] = p[f"{attn}/linear"]["b"]
    sd[f"blocks.{layer}.mlp.W_in"] = p[f"{mlp}/linear_1"]["w"]
    sd[f"blocks.{layer}.mlp.b_in"] = p[f"{mlp}/linear_1"]["b"]
    sd[f"blocks.{layer}.mlp.W_out"] = p[f"{mlp}/linear_2"]["w"]
    sd[f"blocks.{layer}.mlp.b_out"] = p[f"{mlp}/linear_2"]["b"]
    return sd


def _unembed(assembled, labels: list[str], output: str, d_model: int, categorical: bool):
    """tracr's projection of the residual stream on the output space, as ``W_U``."""
    if categorical:
        enc = assembled.output_encoder.encoding_map  # output value -> output id
        W_U = np.zeros((d_model, len(enc)), dtype=np.float32)
        for value, idx in enc.items():
            W_U[labels.index(f"{output}:{value}"), idx] = 1.0
        return W_U
    out_dirs = [i for i, lab in enumerate(labels) if lab.split(":")[0] == output]
    if len(out_dirs) != 1:
        raise RuntimeError(f"expected one numeric output direction, found {len(out_dirs)}")
    W_U = np.zeros((d_model, 1), dtype=np.float32)
    W_U[out_dirs[0], 0] = 1.0
    return W_U


def convert(program: RaspProgram, assembled) -> tuple[dict[str, torch.Tensor], dict]:
    """TL state dict and metadata of tracr's assembled ``program`` (see the module docstring)."""
    from tracr.transformer import encoder

    cfg = assembled.model_config
    p = {
        k: {n: np.asarray(a, dtype=np.float32) for n, a in v.items()}
        for k, v in assembled.params.items()
    }
    H, dh = cfg.num_heads, cfg.key_size
    W_E = p["token_embed"]["embeddings"]
    W_pos = p["pos_embed"]["embeddings"]
    d_model = W_E.shape[1]
    labels = [normalize_label(x) for x in assembled.residual_labels]
    categorical = isinstance(assembled.output_encoder, encoder.CategoricalEncoder)
    sd: dict[str, np.ndarray] = {"embed.W_E": W_E, "pos_embed.W_pos": W_pos}
    for layer in range(cfg.num_layers):
        sd.update(_block_weights(p, layer, H, dh, d_model))
    W_U = _unembed(assembled, labels, program.output, d_model, categorical)
    sd["unembed.W_U"] = W_U
    sd["unembed.b_U"] = np.zeros(W_U.shape[1], dtype=np.float32)
    meta = {
        "program": program.name,
        "vocab": [str(v) for v in program.vocab],
        "max_seq_len": program.max_seq_len,
        "bos": BOS,
        "categorical_output": categorical,
        "input_encoding": {str(k): int(v) for k, v in assembled.input_encoder.encoding_map.items()},
        "output_encoding": (
            {str(k): int(v) for k, v in assembled.output_encoder.encoding_map.items()}
            if categorical
            else None
        ),
        "residual_labels": labels,
        "config": {
            "n_layers": cfg.num_layers,
            "n_heads": H,
            "d_model": d_model,
            "d_head": dh,
            "d_mlp": cfg.mlp_hidden_size,
            "d_vocab": W_E.shape[0],
            "d_vocab_out": W_U.shape[1],
            "n_ctx": W_pos.shape[0],
            "attention_dir": "causal" if program.causal else "bidirectional",
        },
    }
    # contiguous: safetensors refuses strided views (a transposed W_Q can come out as one)
    tensors = {
        k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in sd.items()
    }
    return tensors, meta


def write_weights(program: RaspProgram, out_dir: Path) -> tuple[Path, Path]:
    """Compile ``program`` and write its safetensors weights and JSON metadata into ``out_dir``."""
    from safetensors.torch import save_file

    tensors, meta = convert(program, compile_program(program))
    out_dir.mkdir(parents=True, exist_ok=True)
    st, js = weight_paths(program.name, out_dir)
    save_file(tensors, str(st), metadata={"program": program.name})
    js.write_text(json.dumps(meta, indent=1) + "\n")
    return st, js


# ----- loading (torch only) ---------------------------------------------------------------------
def weight_paths(name: str, weights_dir: Path) -> tuple[Path, Path]:
    """``(<name>.safetensors, <name>.json)`` in ``weights_dir``."""
    return weights_dir / f"{name}.safetensors", weights_dir / f"{name}.json"


def missing_files(name: str, weights_dir: Path) -> list[Path]:
    """The files of ``name`` that are not in ``weights_dir``."""
    return [p for p in weight_paths(name, weights_dir) if not p.is_file()]


def load_meta(name: str, weights_dir: Path) -> dict:
    return json.loads(weight_paths(name, weights_dir)[1].read_text())


def load_state(name: str, weights_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from core.checksum import verify

    path = weight_paths(name, weights_dir)[0]
    verify(path, regenerate=f"python scripts/compile_tracr.py {name}")  # D1: damaged in place
    return load_file(str(path))


def build_model(tensors: dict[str, torch.Tensor], meta: dict, device: str = "cpu"):
    """A :class:`patching.hooked.HookedModel` (eval mode, float32) holding converted tracr
    weights."""
    from patching.hooked import HookedConfig, HookedModel

    cfg = HookedConfig(
        **meta["config"],
        act_fn="relu",
        normalization_type=None,
        positional_embedding_type="standard",
        use_attn_scale=True,  # tracr divides by sqrt(key_size) = sqrt(d_head)
        default_prepend_bos=False,
        init_weights=False,
        device=device,
    )
    model = HookedModel(cfg)
    result = model.load_state_dict(tensors, strict=False)
    params = {n for n, _ in model.named_parameters()}
    unset = params.intersection(result.missing_keys)
    if unset or result.unexpected_keys:
        raise RuntimeError(
            f"tracr weights of {meta['program']!r} don't fit the model: missing {sorted(unset)}, "
            f"unexpected {sorted(result.unexpected_keys)}"
        )
    return model.to(device, print_details=False).eval()


def load_model(name: str, weights_dir: Path, device: str = "cpu"):
    """The compiled program stored as ``name`` in ``weights_dir``, as a ``HookedModel``."""
    missing = missing_files(name, weights_dir)
    if missing:
        raise FileNotFoundError(f"missing {', '.join(map(str, missing))}")
    return build_model(load_state(name, weights_dir), load_meta(name, weights_dir), device)
