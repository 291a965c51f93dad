"""Speed and memory of one interpolated-patch step against a plain forward+backward.

``python -m eval.speed [--out results/speed.json] [--device cpu|cuda] [--repeats 5]``
(:mod:`eval.speed.__main__` runs this module's :func:`main`)
``python -m eval.speed --family llama``: the same on a Llama-shaped model (``eval.speed.family``).

Workload (issue 2): a GPT-2-small-shaped random model (``random/gpt2-small``, :mod:`models.random`),
batch 8 x 16 tokens, float32.
- ``plain``: TransformerLens forward + backward with default settings (parameter gradients
  on), loss on the last position's log-probabilities.
- ``ipd``: the one-pass patched forward + backward into all 32,491 edge coefficients, loss on
  the last position's log-probabilities (logits unembedded at that position only, as IPD does).
- ``ipd_full_logits``: the same, unembedding every position (for transparency).
- ``layerwise``: the first write-up's scheme, O(n_layers) hooked forward passes per step
  (:mod:`eval.speed.layerwise`).
Each variant runs in a process of its own (:func:`eval.isolate.call_in_child`) so its peak
memory is its own, measured as the runner measures a method
(:class:`eval.scoring.cost.MemoryProbe`): peak RSS on CPU (``ru_maxrss``),
``torch.cuda.max_memory_allocated`` on GPU. Times are medians over ``repeats`` steps after one
warm-up step, with device synchronisation around the timer (:func:`eval.scoring.cost.timed`).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import platform
import sys
from pathlib import Path

import torch

from eval.isolate import call_in_child
from eval.preflight import UsageError, check_writable_file
from eval.scoring.cost import MemoryProbe, timed
from eval.speed.pairs import Shape, floor_ratio, interleaved, pair_summary, with_parameter_grads
from models import resolve

BATCH, POS = 8, 16
MODEL = "random/gpt2-small"  # models.resolve
# Imported once by the CPU forkserver. Not eval.speed.step itself: under ``python -m
# eval.speed.step`` each child runs it as ``__mp_main__``, which warns when it was imported before.
PRELOAD = ["eval.isolate", "eval.speed.layerwise", "models", "patching", "transformer_lens"]


def step_fn(variant: str, device: str, model=None):
    """Build the model (unless given) and data for ``variant``; a zero-argument step function."""
    torch.manual_seed(0)
    model = model if model is not None else resolve(MODEL).load(device)
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 50257, (BATCH, POS), generator=gen).to(device)
    corrupt = torch.randint(0, 50257, (BATCH, POS), generator=gen).to(device)
    target = torch.randint(0, 50257, (BATCH,), generator=gen).to(device)
    rows = torch.arange(BATCH, device=device)
    if variant == "plain":

        def step():
            model.zero_grad(set_to_none=True)
            logp = model(clean)[:, -1].log_softmax(-1)
            (-logp[rows, target].mean()).backward()

        return step
    from patching import PatchableModel

    pm = PatchableModel(model)
    ab = pm.ablate("resample", clean, corrupt)
    masks = torch.full((pm.graph.n_edges,), 0.5, device=device, requires_grad=True)
    last = torch.full((BATCH,), POS - 1, device=device)
    if variant == "layerwise":
        from eval.speed.layerwise import layerwise_logits

        def logits():
            return layerwise_logits(model, pm.graph, clean, masks, ab)[:, -1]
    elif variant == "ipd_full_logits":

        def logits():
            return pm(clean, masks, ab)[:, -1]
    else:

        def logits():
            return pm(clean, masks, ab, out_positions=last)

    def step():
        masks.grad = None
        logp = logits().log_softmax(-1)
        (-logp[rows, target].mean()).backward()

    return step


def measure(variant: str, device: str, repeats: int) -> dict:
    """Run one variant in this process: median step seconds and peak memory."""
    step = step_fn(variant, device)
    probe = MemoryProbe(device, isolated=True)
    start_mb = probe.start()
    step()  # warm-up
    times = sorted(timed(step, device)[1] for _ in range(repeats))
    return {
        "seconds": times[len(times) // 2],
        "all_seconds": times,
        "peak_mb": probe.peak(),
        "base_mb": start_mb,  # memory at the start (the runner's start_mb); key kept for readers
    }


def measure_in_child(variant: str, device: str, repeats: int, threads: int) -> dict:
    """The child's entry: ``threads`` torch threads (0: torch's default), then :func:`measure`."""
    faulthandler.enable()
    if threads:
        torch.set_num_threads(threads)
    return measure(variant, device, repeats)


def pairs_in_child(device: str, pairs: int, threads: int) -> dict:
    """Plain and IPD steps on one shared model, interleaved (:mod:`eval.speed.pairs`)."""
    faulthandler.enable()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = resolve(MODEL).load(device)
    ipd = step_fn("ipd", device, model)  # wraps the model (its parameters frozen)
    plain = with_parameter_grads(model, step_fn("plain", device, model))
    return pair_summary(*interleaved(plain, ipd, pairs, device))


def floor() -> dict:
    """The multiply-add floor of this workload's IPD step (:func:`eval.speed.pairs.floor_ratio`)."""
    shape = Shape(12, 768, 12, 12, 64, 3072, 2, 50257, BATCH, POS, 32491, plain_unembeds_all=True)
    return floor_ratio(shape)


def run(
    device: str, repeats: int, layerwise_repeats: int, threads: int = 0, pairs: int = 4
) -> dict:
    from eval.speed import step  # this module by its import name: a child unpickles the target

    def in_child(variant: str, n: int) -> dict:
        return call_in_child(step.measure_in_child, (variant, device, n, threads), device, PRELOAD)

    res = {v: in_child(v, repeats) for v in ("plain", "ipd", "ipd_full_logits")}
    res["layerwise"] = in_child("layerwise", layerwise_repeats)
    timing = call_in_child(step.pairs_in_child, (device, pairs, threads), device, PRELOAD)
    return {
        "timing": f"ratio_*: {pairs} interleaved (plain, ipd) pairs on one model in one process "
        "(eval.speed.pairs); *_s and peak memory: each variant in a process of its own",
        **timing,
        **floor(),
        "workload": f"GPT-2-small-shaped random model, batch {BATCH} x {POS} tokens, "
        f"float32, {device}",
        "plain_s": res["plain"]["seconds"],
        "ipd_step_s": res["ipd"]["seconds"],
        "ipd_step_full_logits_s": res["ipd_full_logits"]["seconds"],
        "layerwise_s": res["layerwise"]["seconds"],
        "ratio_ipd_over_plain": timing["ratio_median"],
        "ratio_separate_processes": res["ipd"]["seconds"] / res["plain"]["seconds"],
        "ratio_ipd_full_logits_over_plain": res["ipd_full_logits"]["seconds"]
        / res["plain"]["seconds"],
        "ratio_layerwise_over_ipd": res["layerwise"]["seconds"] / res["ipd"]["seconds"],
        "peak_mb_plain": res["plain"]["peak_mb"],
        "peak_mb_ipd": res["ipd"]["peak_mb"],
        "peak_mb_ipd_full_logits": res["ipd_full_logits"]["peak_mb"],
        "peak_mb_layerwise": res["layerwise"]["peak_mb"],
        "base_mb": {k: v["base_mb"] for k, v in res.items()},
        "all_seconds": {k: v["all_seconds"] for k, v in res.items()},
        "n_edges": 32491,
        "device": device,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "peak_memory": "peak RSS of a process that ran only that variant"
        if device == "cpu"
        else "torch.cuda.max_memory_allocated",
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if any(a == "--family" or a.startswith("--family=") for a in args):
        from eval.speed.family import main as family_main  # a transformers model of that shape

        return family_main(args)
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="results/speed.json")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--layerwise-repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--pairs", type=int, default=4, help="interleaved (plain, ipd) pairs timed")
    a = p.parse_args(argv)
    from core.limits import MAX_REPEATS, SizeError, check_size

    try:
        check_size("--repeats", a.repeats, MAX_REPEATS)
        check_size("--layerwise-repeats", a.layerwise_repeats, MAX_REPEATS)
        check_size("--pairs", a.pairs, MAX_REPEATS)
    except SizeError as exc:
        p.error(str(exc))
    if a.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    if a.threads < 0:
        p.error("--threads must be >= 0")
    try:  # before the measurements, not after them (D6)
        check_writable_file(a.out, "--out")
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if a.threads:
        torch.set_num_threads(a.threads)
    result = run(a.device, a.repeats, a.layerwise_repeats, a.threads, a.pairs)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    keys = [
        "plain_s",
        "ipd_step_s",
        "ipd_step_full_logits_s",
        "layerwise_s",
        "ratio_min",
        "ratio_median",
        "ratio_max",
        "ratio_min_over_min",
        "floor_ratio",
        "ratio_layerwise_over_ipd",
        "peak_mb_plain",
        "peak_mb_ipd",
        "peak_mb_layerwise",
    ]
    for k in keys:
        print(f"{k:>24}: {result[k]:.3f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
