"""Check the patched forward on your own model, or print a published model's graph size.

    python -m patching.verify --model NAME_OR_PATH [--dtype float32] [--batch 2 --pos 8]
    python -m patching.verify --family llama|qwen2|gemma2|neox|gpt2   # tiny random model
    python -m patching.verify --shape-of gemma-2-2b                   # no weights needed

Prints JSON. The three checks, each a max |difference| of logits:

- ``masks_one``: every edge coefficient 1 = the model's own logits on the clean tokens;
- ``masks_zero``: every coefficient 0 under resample ablation = its logits on the corrupted tokens;
- ``node_patch``: a random node-level circuit (all edges out of a random half of the attention
  layers and MLPs set to 0) = the model run with those modules' outputs replaced by their
  corrupted-run outputs through forward hooks (independent of the patched forward).

Exits 0 only when all three are within ``tolerance`` (relative to max |logit|, per dtype).
The edge-by-edge reference, finite-difference and ``live=`` checks run in the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass

import torch

from models import resolve
from models.families import FAMILIES, by_model_type
from patching.graph import EdgeGraph, GraphConfig

# max |diff| / max(1, max |logit|). transformers runs RMSNorm, softmax and rotary in float32
# even in a float64 model, so float64 is held to float32's bound.
REL_TOL = {
    torch.float64: 1e-5,
    torch.float32: 1e-4,
    torch.float16: 1e-2,
    torch.bfloat16: 1e-1,
}
DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
# --family NAME -> the transformers model_type it builds (models/families/)
FAMILY_KEYS = {name: f.model_type for name, f in FAMILIES.items()}


@dataclass(frozen=True)
class Shape:
    """Published shape of a model: what its graph size depends on (plus d_model for memory)."""

    family: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    parallel: bool = False


SHAPES: dict[str, Shape] = {
    "gpt2-small": Shape("gpt2", 12, 12, 12, 768),
    "gpt2-medium": Shape("gpt2", 24, 16, 16, 1024),
    "pythia-70m": Shape("neox", 6, 8, 8, 512, parallel=True),
    "pythia-160m": Shape("neox", 12, 12, 12, 768, parallel=True),
    "pythia-410m": Shape("neox", 24, 16, 16, 1024, parallel=True),
    "qwen2.5-0.5b": Shape("qwen2", 24, 14, 2, 896),
    "qwen2.5-1.5b": Shape("qwen2", 28, 12, 2, 1536),
    "gemma-2-2b": Shape("gemma2", 26, 8, 4, 2304),
    "gemma-2-9b": Shape("gemma2", 42, 16, 8, 3584),
    "llama-3.2-1b": Shape("llama", 16, 32, 8, 2048),
    "llama-3.1-8b": Shape("llama", 32, 32, 8, 4096),
}


def graph_size(name: str, batch: int = 8, pos: int = 64, bytes_per: int = 2) -> dict:
    """Sources and edges of a published model's graph, and the memory of the difference stack
    (``n_sources x batch x pos x d_model`` values; a second buffer of that size holds its
    gradient during a backward pass)."""
    if name not in SHAPES:
        raise ValueError(f"unknown model {name!r}; known shapes: {', '.join(SHAPES)}")
    s = SHAPES[name]
    g = EdgeGraph(s.n_layers, s.n_heads, True, GraphConfig(), parallel=s.parallel)
    joined = EdgeGraph(
        s.n_layers, s.n_heads, True, GraphConfig(split_qkv=False), parallel=s.parallel
    )
    stack = g.n_sources * batch * pos * s.d_model * bytes_per
    return {
        "model": name,
        **asdict(s),
        "n_sources": g.n_sources,
        "n_edges": g.n_edges,
        "n_edges_qkv_joined": joined.n_edges,
        "stack_gib": round(stack / 2**30, 3),
        "stack_workload": f"batch {batch} x pos {pos}, {bytes_per} bytes per value; "
        "x2 with the gradient buffer",
    }


def _output_modules(model) -> list:
    """Per layer, the modules whose outputs are the attention and MLP contributions to the
    residual stream (Gemma-2: the post-norms), as (attention_module, mlp_module); each family
    says which (:attr:`models.families.base.Family.output_modules`)."""
    return by_model_type(model.config.model_type).output_modules(model)


def _hooked_logits(model, clean, patch: dict) -> torch.Tensor:
    """Logits with each module in ``patch`` returning the given output (its first element)."""

    def replace(value):
        def hook(module, args, out):
            return (value, *out[1:]) if isinstance(out, tuple) else value

        return hook

    handles = [m.register_forward_hook(replace(v)) for m, v in patch.items()]
    try:
        with torch.no_grad():
            return model(clean).logits
    finally:
        for h in handles:
            h.remove()


def _captured(model, tokens, modules) -> dict:
    seen = {}

    def grab(module, args, out):
        seen[module] = out[0] if isinstance(out, tuple) else out

    handles = [m.register_forward_hook(grab) for m in modules]
    try:
        with torch.no_grad():
            model(tokens)
    finally:
        for h in handles:
            h.remove()
    return seen


def check(model, batch: int = 2, pos: int = 8, seed: int = 0) -> dict:
    """Run the three checks on a ``transformers`` model; returns the JSON-able result."""
    from patching import PatchableModel
    from patching.adapters.hf import is_hf_causal_lm

    if not is_hf_causal_lm(model):
        raise ValueError(
            f"patching.verify checks transformers models, not a {type(model).__name__} (the "
            "project's own models are checked against TransformerLens hooks in the test suite)"
        )
    pm = PatchableModel(model)
    g, spec = pm.graph, pm.spec
    gen = torch.Generator().manual_seed(seed)
    vocab = spec.d_vocab
    clean = torch.randint(0, vocab, (batch, pos), generator=gen).to(pm.device)
    corrupt = torch.randint(0, vocab, (batch, pos), generator=gen).to(pm.device)
    with torch.no_grad():
        own_clean, own_corrupt = model(clean).logits, model(corrupt).logits
        ab = pm.ablate("resample", clean, corrupt)
        E = g.n_edges
        ones = pm(clean, torch.ones(E), ab)
        zeros = pm(clean, torch.zeros(E), ab)
        # node-level circuit: ablate a random half of the attention layers and MLPs
        layers = _output_modules(model)
        pick = torch.rand(len(layers), 2, generator=gen) < 0.5
        mask = torch.ones(E)
        dead = set()
        for layer in range(spec.n_layers):
            if pick[layer, 0]:
                dead |= {f"a{layer}.h{h}" for h in range(spec.n_heads)}
            if pick[layer, 1]:
                dead.add(f"m{layer}")
        for i, (s, _) in enumerate(g.edge_pairs):
            if s in dead:
                mask[i] = 0.0
        patched = pm(clean, mask, ab)
    modules = [m for layer, pair in enumerate(layers) for j, m in enumerate(pair) if pick[layer, j]]
    hooked = _hooked_logits(model, clean, _captured(model, corrupt, modules))
    scale = max(1.0, own_clean.abs().max().item())
    tol = REL_TOL[spec.dtype] * scale
    diffs = {
        "masks_one": (ones - own_clean).abs().max().item(),
        "masks_zero": (zeros - own_corrupt).abs().max().item(),
        "node_patch": (patched - hooked).abs().max().item(),
    }
    return {
        "family": spec.family,
        "dtype": str(spec.dtype).removeprefix("torch."),
        "n_sources": g.n_sources,
        "n_edges": g.n_edges,
        "tokens": [batch, pos],
        "node_patch_ablated": sorted(dead, key=g.sources.index)[:8]
        + (["..."] if len(dead) > 8 else []),
        "max_abs_diff": diffs,
        "node_patch_effect": (patched - own_clean).abs().max().item(),
        "tolerance": tol,
        "ok": all(d <= tol for d in diffs.values()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--model", help="a model name (models.resolve): hub name, local folder, random/<family>"
    )
    src.add_argument("--family", choices=sorted(FAMILY_KEYS), help="a tiny random model")
    src.add_argument(
        "--shape-of", choices=sorted(SHAPES), help="graph size from the published shape"
    )
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--pos", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    from core.limits import MAX_BATCH, MAX_POS, SizeError, check_size

    try:
        check_size("--batch", a.batch, MAX_BATCH)
        check_size("--pos", a.pos, MAX_POS)
    except SizeError as exc:
        p.error(str(exc))
    if a.shape_of:
        print(json.dumps(graph_size(a.shape_of), indent=2))
        return 0
    dtype = DTYPES[a.dtype]
    try:
        model = resolve(f"random/{a.family}" if a.family else a.model).load(dtype=dtype)
        result = check(model, a.batch, a.pos, a.seed)
    except (OSError, NotImplementedError, ValueError) as e:  # e.g. a folder without a model
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}, indent=2))
        return 2
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
