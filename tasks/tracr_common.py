"""The ACDC paper's tracr programs, compiled once and loaded as TransformerLens models.

tracr (and with it JAX and Haiku) is needed only to (re)compile: ``python
scripts/compile_tracr.py`` writes ``tracr_weights/<program>.safetensors`` (the
``HookedTransformer`` state dict) and ``tracr_weights/<program>.json`` (config, token
encodings, residual-stream labels). Loading reads those two files and needs only torch.

Conversion. tracr assembles a model of ``num_layers`` layers, each an attention sublayer then an
MLP sublayer; a craft block with no attention (or no MLP) in a layer gets zero weights there. Each
tracr layer becomes one TransformerLens block with the same weights: ``W_Q/W_K/W_V`` are tracr's
query/key/value ``w`` split per head, ``W_O`` the ``linear`` ``w``, ``W_in``/``W_out`` the MLP's
``linear_1``/``linear_2``; biases (all zero in tracr) are copied too. No LayerNorm, ReLU MLPs,
standard positional embeddings (tracr's BOS position has a zero positional row). tracr's
``MultiHeadAttention`` divides the attention logits by ``sqrt(key_size)``, so the TL model keeps
``use_attn_scale=True`` with ``d_head = key_size``: that is TL's ``sqrt(d_head)`` and matches tracr
exactly (``use_attn_scale=False`` would make every softmax ``sqrt(key_size)`` times colder). The
attention direction follows the program: ``reverse`` needs the length of the whole input
(bidirectional), ``frac_prevs`` is causal. The unembedding is tracr's projection of the residual
stream on the output space: the output tokens for a categorical program (logits over them), the
single numeric output direction for a numerical one (``d_vocab_out = 1``).

tracr-pypi names every residual direction ``<sop name>_<unique id>:<value>``; the ids depend on
how many RASP expressions the process built before, so the stored labels drop them.

Also here: :class:`TracrTask`, what the two tasks share (data over every input of one length,
ground truth from a table of :class:`GTEdge`), and :func:`read_write_edges`, the edges along
which the compiled weights connect, from which each task's table is derived.
"""

from __future__ import annotations

import itertools
import json
import re
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from patching.graph import EdgeGraph, GraphConfig
from tasks.base import Task, TaskData

WEIGHTS_DIR = Path(__file__).parent / "tracr_weights"
BOS = "BOS"


@dataclass(frozen=True)
class ProgramSpec:
    """A RASP program and the compiler settings of the ACDC paper's tracr task."""

    name: str
    vocab: tuple
    max_seq_len: int
    causal: bool
    output: str  # name of the program's output SOp
    build: Callable[[], object]  # -> rasp.SOp; imports tracr lazily


def _build_reverse():
    """tracr ``lib.make_reverse(tokens)``, with fixed names for every SOp."""
    from tracr.rasp import rasp

    all_true = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE).named("all_true")
    length = rasp.SelectorWidth(all_true).named("length")
    opp_idx = (length - rasp.indices).named("opp_idx")
    opp_idx = (opp_idx - 1).named("opp_idx-1")
    flip = rasp.Select(rasp.indices, opp_idx, rasp.Comparison.EQ).named("reverse_selector")
    return rasp.Aggregate(flip, rasp.tokens).named("reverse")


def _build_proportion():
    """tracr ``lib.make_frac_prevs(tokens == "x")``: the running fraction of ``x`` tokens."""
    from tracr.rasp import rasp

    is_x = rasp.numerical(rasp.Map(lambda t: t == "x", rasp.tokens)).named("is_x")
    prevs = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ).named("prevs")
    return rasp.numerical(rasp.Aggregate(prevs, is_x, default=0)).named("frac_prevs")


PROGRAMS: dict[str, ProgramSpec] = {
    "reverse": ProgramSpec("reverse", (1, 2, 3), 5, False, "reverse", _build_reverse),
    "proportion": ProgramSpec(
        "proportion", ("w", "x", "y", "z"), 5, True, "frac_prevs", _build_proportion
    ),
}


def _spec(name: str) -> ProgramSpec:
    if name not in PROGRAMS:
        raise ValueError(f"unknown tracr program {name!r}; choose one of {sorted(PROGRAMS)}")
    return PROGRAMS[name]


def normalize_label(label: str) -> str:
    """``opp_idx-1_17:3`` -> ``opp_idx-1:3``, ``length_8_selector_width_attn_output`` ->
    ``length_selector_width_attn_output`` (drop tracr-pypi's per-process unique ids; no SOp
    name of these programs contains ``_<digits>`` itself)."""
    head, sep, value = label.partition(":")
    return re.sub(r"_\d+(?=_|$)", "", head) + sep + value


# ----- compiling (needs tracr / JAX) ------------------------------------------------------------
def compile_program(name: str):
    """Compile the named program with tracr (imports JAX); returns tracr's assembled model."""
    from tracr.compiler import compiling

    spec = _spec(name)
    return compiling.compile_rasp_to_model(
        spec.build(),
        vocab=set(spec.vocab),
        max_seq_len=spec.max_seq_len,
        causal=spec.causal,
        compiler_bos=BOS,
    )


def convert(name: str, assembled) -> tuple[dict[str, torch.Tensor], dict]:
    """TL state dict and metadata of a tracr assembled model (see the module docstring)."""
    from tracr.transformer import encoder

    spec = _spec(name)
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
        attn, mlp = f"transformer/layer_{layer}/attn", f"transformer/layer_{layer}/mlp"
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
    out_name = spec.output
    out_dirs = [i for i, lab in enumerate(labels) if lab.split(":")[0] == out_name]
    if categorical:
        enc = assembled.output_encoder.encoding_map  # output value -> output id
        W_U = np.zeros((d_model, len(enc)), dtype=np.float32)
        for value, idx in enc.items():
            W_U[labels.index(f"{out_name}:{value}"), idx] = 1.0
    else:
        if len(out_dirs) != 1:
            raise RuntimeError(f"expected one numeric output direction, found {len(out_dirs)}")
        W_U = np.zeros((d_model, 1), dtype=np.float32)
        W_U[out_dirs[0], 0] = 1.0
    sd["unembed.W_U"] = W_U
    sd["unembed.b_U"] = np.zeros(W_U.shape[1], dtype=np.float32)
    meta = {
        "program": name,
        "vocab": [str(v) for v in spec.vocab],
        "max_seq_len": spec.max_seq_len,
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
            "attention_dir": "causal" if spec.causal else "bidirectional",
        },
    }
    return {k: torch.tensor(np.array(v, dtype=np.float32)) for k, v in sd.items()}, meta


def write_weights(name: str, out_dir: Path = WEIGHTS_DIR) -> tuple[Path, Path]:
    """Compile ``name`` and write its safetensors weights and JSON metadata into ``out_dir``."""
    from safetensors.torch import save_file

    tensors, meta = convert(name, compile_program(name))
    out_dir.mkdir(parents=True, exist_ok=True)
    st, js = out_dir / f"{name}.safetensors", out_dir / f"{name}.json"
    save_file(tensors, str(st), metadata={"program": name})
    js.write_text(json.dumps(meta, indent=1) + "\n")
    return st, js


# ----- loading (torch only) ---------------------------------------------------------------------
def weight_paths(name: str, weights_dir: Path = WEIGHTS_DIR) -> tuple[Path, Path]:
    _spec(name)
    return weights_dir / f"{name}.safetensors", weights_dir / f"{name}.json"


def missing_weights_reason(name: str, weights_dir: Path = WEIGHTS_DIR) -> str | None:
    """Why the shipped weights of ``name`` can't be read, or None."""
    missing = [str(p) for p in weight_paths(name, weights_dir) if not p.is_file()]
    if missing:
        return f"missing {', '.join(missing)}; regenerate with `python scripts/compile_tracr.py`"
    return None


def load_meta(name: str, weights_dir: Path = WEIGHTS_DIR) -> dict:
    return json.loads(weight_paths(name, weights_dir)[1].read_text())


def load_state(name: str, weights_dir: Path = WEIGHTS_DIR) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(weight_paths(name, weights_dir)[0]))


def build_model(tensors: dict[str, torch.Tensor], meta: dict, device: str = "cpu"):
    """A ``HookedTransformer`` (eval mode, float32) holding converted tracr weights."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        **meta["config"],
        act_fn="relu",
        normalization_type=None,
        positional_embedding_type="standard",
        use_attn_scale=True,  # tracr divides by sqrt(key_size) = sqrt(d_head)
        default_prepend_bos=False,
        init_weights=False,
        device=device,
    )
    model = HookedTransformer(cfg)
    result = model.load_state_dict(tensors, strict=False)
    params = {n for n, _ in model.named_parameters()}
    unset = params.intersection(result.missing_keys)
    if unset or result.unexpected_keys:
        raise RuntimeError(
            f"tracr weights of {meta['program']!r} don't fit the model: missing {sorted(unset)}, "
            f"unexpected {sorted(result.unexpected_keys)}"
        )
    return model.to(device, print_details=False).eval()


def load_model(name: str, device: str = "cpu", weights_dir: Path = WEIGHTS_DIR):
    """The shipped compiled program ``name`` as a ``HookedTransformer`` on ``device``."""
    reason = missing_weights_reason(name, weights_dir)
    if reason:
        raise FileNotFoundError(reason)
    return build_model(load_state(name, weights_dir), load_meta(name, weights_dir), device)


# ----- read/write structure of the compiled weights ---------------------------------------------
def _support(v: torch.Tensor, labels: list[str]) -> frozenset[str]:
    return frozenset(labels[i] for i in torch.nonzero(v != 0).flatten().tolist())


def read_write_edges(model, labels: list[str]) -> dict[str, frozenset[str]]:
    """Position-free edges ``src->dst`` (q/k/v split) along which the compiled weights connect:
    ``src`` writes a residual direction (nonzero output weight) that ``dst`` reads (nonzero input
    weight). Maps each such edge to the directions it carries."""
    writes = {"embed": _support(model.W_E.abs().sum(0) + model.W_pos.abs().sum(0), labels)}
    reads = {}
    for layer, block in enumerate(model.blocks):
        a = block.attn
        for h in range(model.cfg.n_heads):
            writes[f"a{layer}.h{h}"] = _support(a.W_O[h].abs().sum(0), labels)
            for role, W in zip("qkv", (a.W_Q, a.W_K, a.W_V), strict=True):
                reads[f"a{layer}.h{h}.{role}"] = (layer, _support(W[h].abs().sum(1), labels))
        writes[f"m{layer}"] = _support(block.mlp.W_out.abs().sum(0), labels)
        reads[f"m{layer}"] = (layer + 0.5, _support(block.mlp.W_in.abs().sum(1), labels))
    reads["logits"] = (model.cfg.n_layers, _support(model.W_U.abs().sum(1), labels))

    def depth(src: str) -> float:  # when src writes: embed first, a head at l, an MLP at l + 0.5
        return -1 if src == "embed" else int(src[1:].split(".")[0]) + (0.5 if src[0] == "m" else 0)

    edges = {}
    for dst, (when, read) in reads.items():
        for src, written in writes.items():
            if depth(src) < when and written & read:
                edges[f"{src}->{dst}"] = written & read
    return edges


# ----- ground truth tables ----------------------------------------------------------------------
@dataclass(frozen=True)
class GTEdge:
    """One ground-truth edge of a tracr task, in the q/k/v-split graph.

    positions: ``answers`` (every position but BOS) or ``bos``.
    resample: whether the edge is also needed under resample ablation, i.e. what it carries
        differs between inputs of the task's length and the destination's output depends on it.
    carries: what flows along the edge (documentation).
    """

    src: str
    dst: str
    positions: str
    resample: bool
    carries: str


def _positions(kind: str, n_pos: int) -> range | tuple[int, ...]:
    table = {"answers": range(1, n_pos), "bos": (0,)}
    return table[kind]


def _is_mlp(node: str) -> bool:
    return node.startswith("m") and node[1:].isdigit()


def expand_ground_truth(edges: tuple[GTEdge, ...], graph, ablation: str, n_pos: int) -> set[str]:
    """Edge names of ``edges`` in ``graph``: q/k/v merged into one head input (union) when the
    graph doesn't split them, per-position names when it has positions, and MLP edges left out of
    an attention-only graph (its MLP edges stay clean)."""
    cfg = graph.config
    out: dict[str, set[int]] = {}
    for e in edges:
        if ablation == "resample" and not e.resample:
            continue
        if not cfg.include_mlp and (_is_mlp(e.src) or _is_mlp(e.dst)):
            continue
        dst = e.dst if cfg.split_qkv or e.dst.count(".") < 2 else e.dst.rsplit(".", 1)[0]
        out.setdefault(f"{e.src}->{dst}", set()).update(_positions(e.positions, n_pos))
    if cfg.positions is None:
        return set(out)
    return {f"{name}@{p}" for name, ps in out.items() for p in ps}


# ----- the shared task ---------------------------------------------------------------------------
class TracrTask(Task):
    """A task over a compiled tracr program: every input of ``seq_len`` tokens, with BOS first.

    Subclasses set ``program``, ``seq_len``, ``max_examples`` (the number of distinct inputs),
    ``GROUND_TRUTH`` and implement :meth:`_targets` and the metric.
    """

    program: ClassVar[str]
    seq_len: ClassVar[int] = 4
    GROUND_TRUTH: ClassVar[tuple[GTEdge, ...]] = ()
    ablations: ClassVar[tuple[str, ...]] = ("zero", "resample")
    default_ablation: ClassVar[str] = "zero"  # as in the ACDC paper's tracr experiments
    per_position: ClassVar[bool] = True

    def __init__(self) -> None:
        self._models: dict[str, object] = {}
        self._meta: dict | None = None

    @property
    def n_pos(self) -> int:
        return self.seq_len + 1

    @property
    def meta(self) -> dict:
        if self._meta is None:
            self._meta = load_meta(self.program)
        return self._meta

    def unavailable_reason(self) -> str | None:
        return missing_weights_reason(self.program)

    def load_model(self, device: str = "cpu"):
        key = str(device)
        if key not in self._models:
            self._models[key] = load_model(self.program, device)
        return self._models[key]

    def inputs(self) -> list[tuple]:
        """Every input sequence (without BOS), in a fixed order."""
        return list(itertools.product(PROGRAMS[self.program].vocab, repeat=self.seq_len))

    def tokens(self, seqs: list[tuple]) -> Int[Tensor, "n pos"]:
        enc = self.meta["input_encoding"]
        return torch.tensor([[enc[BOS]] + [enc[str(t)] for t in s] for s in seqs], dtype=torch.long)

    def _make_data(self, n: int, seed: int) -> TaskData:
        seqs = self.inputs()
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(seqs), generator=gen)[:n]
        # partner: uniform over the other inputs, so corrupted[i] != clean[i]
        other = torch.randint(len(seqs) - 1, (n,), generator=gen)
        other = other + (other >= order).long()
        clean = self.tokens([seqs[i] for i in order.tolist()])
        corrupted = self.tokens([seqs[i] for i in other.tolist()])
        answer_mask = torch.ones_like(clean, dtype=torch.bool)
        answer_mask[:, 0] = False
        answers, extra = self._targets([seqs[i] for i in order.tolist()])
        return TaskData(clean, corrupted, answer_mask, answers, extra=extra)

    @abstractmethod
    def _targets(self, seqs: list[tuple]) -> tuple[Int[Tensor, "n pos"], dict[str, Tensor]]:
        """The program's output on ``seqs``: answer ids (0 at BOS) and any extra tensors."""

    def check_graph(self, config: GraphConfig) -> None:
        if config.positions not in (None, self.n_pos):
            raise ValueError(
                f"task {self.key!r} has per-position ground truth for positions={self.n_pos} "
                f"(BOS + {self.seq_len} tokens) or positions=None, not {config.positions}"
            )

    def _ground_truth(self, graph: EdgeGraph, ablation: str) -> set[str]:
        c = self.meta["config"]
        if (graph.n_layers, graph.n_heads, graph.has_mlp) != (c["n_layers"], c["n_heads"], True):
            raise ValueError(
                f"task {self.key!r} has ground truth for its compiled model ({c['n_layers']} "
                f"layers, {c['n_heads']} head, MLPs), not a graph of {graph.n_layers} layers, "
                f"{graph.n_heads} heads, has_mlp={graph.has_mlp}"
            )
        return expand_ground_truth(self.GROUND_TRUTH, graph, ablation, self.n_pos)


def answer_mean(values: Float[Tensor, "*k n pos"], data: TaskData) -> Float[Tensor, "*k n"]:
    """Mean of ``values`` over each example's answer positions."""
    mask = data.answer_mask.to(values.dtype)
    return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def main(argv: list[str] | None = None) -> int:
    """``compile [program ...]``: (re)write the shipped weights (default: every program)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("command", choices=["compile"])
    parser.add_argument("programs", nargs="*", default=sorted(PROGRAMS))
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args(argv)
    for name in args.programs:
        for path in write_weights(name, args.out):
            print(f"wrote {path}")
    return 0
