"""Speed and memory of one IPD step on a random ``transformers`` model of a family's shape.

``python -m eval.speed --family llama`` (or ``python -m eval.speed.family --family llama``)
writes ``results/speed_llama.json`` with the keys of ``results/speed.json``.

Workload: a random Llama-shaped model (``random/llama-3.2-1b``, :mod:`models.random`: 16 layers,
d_model 2048, 32 query heads over 8 key/value heads, d_head 64, SwiGLU width 8192: Llama-3.2-1B's
shape, with a 32,000-token vocabulary), batch 4 x 32 tokens, float32.
- ``plain``: the ``transformers`` forward + backward with parameter gradients on, loss on the
  last position's log-probabilities (``logits_to_keep=1``, so only that position is unembedded).
- ``ipd``: the one-pass patched forward + backward into every edge coefficient, loss on the last
  position (unembedded there only).
- ``ipd_full_logits``: the same, unembedding every position.
The layer-by-layer scheme needs TransformerLens hooks and is not run (its keys are ``null``).
Each variant runs in its own process; times are medians after one warm-up step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from eval.scoring.cost import synchronize, timed
from eval.speed.pairs import Shape, floor_ratio, interleaved, pair_summary, with_parameter_grads
from models import resolve
from models.families import family as family_of

BATCH, POS = 4, 32
# family -> the published shape its benchmark runs on (models/families/<family>.py), built as
# the random model random/<family>-<shape> (models.random)
SHAPES = {"llama": "3.2-1b"}
VARIANTS = ("plain", "ipd", "ipd_full_logits")


def family_model(family: str, device: str = "cpu"):
    """The random ``transformers`` causal LM of ``family``'s benchmark shape (:data:`SHAPES`)."""
    return resolve(f"random/{family}-{SHAPES[family]}").load(device)


def _step_fn(family: str, variant: str, device: str, model=None):
    model = model if model is not None else family_model(family, device=device)
    V = model.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, V, (BATCH, POS), generator=gen).to(device)
    corrupt = torch.randint(0, V, (BATCH, POS), generator=gen).to(device)
    target = torch.randint(0, V, (BATCH,), generator=gen).to(device)
    rows = torch.arange(BATCH, device=device)
    if variant == "plain":

        def step():
            model.zero_grad(set_to_none=True)
            logp = model(clean, logits_to_keep=1).logits[:, -1].log_softmax(-1)
            (-logp[rows, target].mean()).backward()

        return step, None
    from patching import PatchableModel

    pm = PatchableModel(model)
    ab = pm.ablate("resample", clean, corrupt)
    masks = torch.full((pm.graph.n_edges,), 0.5, device=device, requires_grad=True)
    last = torch.full((BATCH,), POS - 1, device=device)

    def step():
        masks.grad = None
        if variant == "ipd":
            logits = pm(clean, masks, ab, out_positions=last)
        else:
            logits = pm(clean, masks, ab)[:, -1]
        (-logits.log_softmax(-1)[rows, target].mean()).backward()

    return step, pm.graph.n_edges


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(family: str, variant: str, device: str, repeats: int) -> dict:
    step, n_edges = _step_fn(family, variant, device)
    base = _rss_mb() if device == "cpu" else torch.cuda.memory_allocated() / 2**20
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step()  # warm-up
    times = sorted(timed(step, device)[1] for _ in range(repeats))
    synchronize(device)
    peak = _rss_mb() if device == "cpu" else torch.cuda.max_memory_allocated() / 2**20
    return {
        "seconds": times[len(times) // 2],
        "all_seconds": times,
        "peak_mb": peak,
        "base_mb": base,
        "n_edges": n_edges,
    }


def _in_child(family: str, variant: str, device: str, repeats: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, "-m", "eval.speed.family", "--family", family, "--child", variant]
        cmd += ["--device", device, "--repeats", str(repeats), "--out", str(out)]
        cmd += ["--threads", str(threads)]
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text())


def pairs(family: str, device: str, n_pairs: int) -> dict:
    """Plain and IPD steps on one shared model, interleaved (:mod:`eval.speed.pairs`), and the
    multiply-add floor of the IPD step on this shape."""
    model = family_model(family, device=device)
    ipd, n_edges = _step_fn(family, "ipd", device, model)  # wraps the model (parameters frozen)
    plain = with_parameter_grads(model, _step_fn(family, "plain", device, model)[0])
    cfg = model.config
    shape = Shape(
        cfg.num_hidden_layers,
        cfg.hidden_size,
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.head_dim,
        cfg.intermediate_size,
        3,  # SwiGLU
        cfg.vocab_size,
        BATCH,
        POS,
        n_edges,
        plain_unembeds_all=False,  # logits_to_keep=1
    )
    return {**pair_summary(*interleaved(plain, ipd, n_pairs, device)), **floor_ratio(shape)}


def run(family: str, device: str, repeats: int, threads: int = 0, n_pairs: int = 4) -> dict:
    res = {v: _in_child(family, v, device, repeats, threads) for v in VARIANTS}
    plain, ipd, full = res["plain"], res["ipd"], res["ipd_full_logits"]
    timing = _in_child(family, "pairs", device, n_pairs, threads)
    return {
        "timing": f"ratio_*: {n_pairs} interleaved (plain, ipd) pairs on one model in one "
        "process (eval.speed.pairs); *_s and peak memory: each variant in a process of its own",
        **timing,
        "workload": f"random {family}-shaped transformers model "
        f"({family_of(family).shapes[SHAPES[family]]}), batch "
        f"{BATCH} x {POS} tokens, float32, {device}",
        "plain_s": plain["seconds"],
        "ipd_step_s": ipd["seconds"],
        "ipd_step_full_logits_s": full["seconds"],
        "layerwise_s": None,
        "ratio_ipd_over_plain": timing["ratio_median"],
        "ratio_separate_processes": ipd["seconds"] / plain["seconds"],
        "ratio_ipd_full_logits_over_plain": full["seconds"] / plain["seconds"],
        "ratio_layerwise_over_ipd": None,
        "peak_mb_plain": plain["peak_mb"],
        "peak_mb_ipd": ipd["peak_mb"],
        "peak_mb_ipd_full_logits": full["peak_mb"],
        "peak_mb_layerwise": None,
        "base_mb": {k: v["base_mb"] for k, v in res.items()},
        "all_seconds": {k: v["all_seconds"] for k, v in res.items()},
        "n_edges": ipd["n_edges"],
        "device": device,
        "torch_version": torch.__version__,
        "torch_threads": threads or torch.get_num_threads(),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "peak_memory": "peak RSS of a process that ran only that variant"
        if device == "cpu"
        else "torch.cuda.max_memory_allocated",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--family", required=True, choices=sorted(SHAPES))
    p.add_argument("--out", default=None, help="default results/speed_<family>.json")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--pairs", type=int, default=4, help="interleaved (plain, ipd) pairs timed")
    p.add_argument("--child", choices=(*VARIANTS, "pairs"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    from core.limits import MAX_REPEATS, SizeError, check_size

    try:
        check_size("--repeats", a.repeats, MAX_REPEATS)
        check_size("--pairs", a.pairs, MAX_REPEATS)
    except SizeError as exc:
        p.error(str(exc))
    if a.threads < 0:
        p.error("--threads must be >= 0")
    if a.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    if a.threads:
        torch.set_num_threads(a.threads)
    out = Path(a.out or f"results/speed_{a.family}.json")
    if a.child == "pairs":
        out.write_text(json.dumps(pairs(a.family, a.device, a.repeats)))
        return 0
    if a.child:
        out.write_text(json.dumps(measure(a.family, a.child, a.device, a.repeats)))
        return 0
    result = run(a.family, a.device, a.repeats, a.threads, a.pairs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    keys = ("plain_s", "ipd_step_s", "ratio_min", "ratio_median", "ratio_max")
    keys += ("ratio_min_over_min", "floor_ratio", "peak_mb_plain", "peak_mb_ipd")
    for k in keys:
        print(f"{k:>24}: {result[k]:.3f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
