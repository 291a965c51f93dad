"""Step timings that machine noise can't decide: plain and IPD steps interleaved in one process
on one shared model, and the multiply-add floor of the IPD step.

On a shared machine a step timed in a process of its own can swing 10x within one run, so a ratio
of medians taken in separate processes means little. Here every pair runs a plain step and an IPD
step back to back (their order alternating from pair to pair, after a warm-up of each), so both
sides of a pair see the same machine; the report is the min, median and max of the per-pair
ratios, and min over min.

:func:`floor_ratio` counts multiply-adds: what the IPD step must compute beyond a plain forward and
backward (its per-destination mixing of the source stack, per-query-head key/value projections
under grouped-query attention) against what it does not (parameter gradients, which IPD never
needs). A measured ratio near the floor means the step is as cheap as its formulation allows.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from eval.scoring.cost import timed


def interleaved(
    plain: Callable[[], None], ipd: Callable[[], None], pairs: int, device: str
) -> tuple[list[float], list[float]]:
    """(plain seconds, ipd seconds), one of each per pair; a warm-up step of each first."""
    plain()
    ipd()
    p, q = [], []
    for i in range(pairs):
        if i % 2 == 0:
            p.append(timed(plain, device)[1])
            q.append(timed(ipd, device)[1])
        else:
            q.append(timed(ipd, device)[1])
            p.append(timed(plain, device)[1])
    return p, q


def with_parameter_grads(model, step: Callable[[], None]) -> Callable[[], None]:
    """``step`` with the model's parameter gradients on (a plain training step), off again
    after it: the patched model shares the parameters and keeps them frozen for IPD."""
    params = list(model.parameters())

    def wrapped() -> None:
        for p in params:
            p.requires_grad_(True)
        try:
            step()
        finally:
            for p in params:
                p.requires_grad_(False)
                p.grad = None

    return wrapped


def pair_summary(plain_s: list[float], ipd_s: list[float]) -> dict:
    """The per-pair ratios ipd/plain with their min, median and max, and min over min."""
    ratios = [b / a for a, b in zip(plain_s, ipd_s, strict=True)]
    return {
        "pair_ratios": ratios,
        "ratio_min": min(ratios),
        "ratio_median": statistics.median(ratios),
        "ratio_max": max(ratios),
        "ratio_min_over_min": min(ipd_s) / min(plain_s),
        "plain_all_seconds": plain_s,
        "ipd_all_seconds": ipd_s,
    }


@dataclass(frozen=True)
class Shape:
    """What the multiply-add count needs of a model and a batch."""

    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_mlp: int
    mlp_mats: int  # 2 (GELU MLP) or 3 (gated: SwiGLU)
    vocab: int
    batch: int
    pos: int
    n_edges: int
    plain_unembeds_all: bool  # the plain step's logits at every position (TransformerLens)


def floor_ratio(s: Shape) -> dict:
    """Multiply-adds of an IPD step over a plain step (forward + backward), per the counts below.

    Per token and layer, forward: q and o projections ``2 d H h``; k and v ``2 d K h`` (plain)
    or ``2 d H h`` (IPD: every query head reads its own k/v input, projected by its group's
    W_K/W_V); attention scores and mixing ``~ P H h`` (causal: half of ``2 P H h``); MLP
    ``mats d d_mlp``. Unembedding ``d V`` per unembedded position (IPD: the last only).
    IPD adds the mixing of the source stack into every destination, ``E d`` per token (written
    as the ablated sum, fixed per batch, plus ``sum_e m_e (y_s - y~_s)``). Backward: plain needs
    input and parameter gradients (2x its forward); IPD needs input gradients only (1x its
    forward's matmuls) plus the mixing's two gradients (into the stack and into the
    coefficients, ``2 E d``). Elementwise work (norms, activations, softmax) is not counted."""
    d, H, K, h = s.d_model, s.n_heads, s.n_kv_heads, s.d_head
    attn = s.pos * H * h  # causal scores + weighted values, averaged over positions
    mlp = s.mlp_mats * d * s.d_mlp
    layer_plain = 2 * d * H * h + 2 * d * K * h + attn + mlp
    layer_ipd = 2 * d * H * h + 2 * d * H * h + attn + mlp
    tokens = s.batch * s.pos
    unembed_plain = (tokens if s.plain_unembeds_all else s.batch) * d * s.vocab
    unembed_ipd = s.batch * d * s.vocab
    fwd_plain = tokens * s.n_layers * layer_plain + unembed_plain
    fwd_ipd_mm = tokens * s.n_layers * layer_ipd + unembed_ipd
    mix = tokens * s.n_edges * d
    plain = 3 * fwd_plain
    ipd = 2 * fwd_ipd_mm + 3 * mix
    return {
        "floor_ratio": ipd / plain,
        "macs_plain": plain,
        "macs_ipd": ipd,
        "macs_ipd_mixing": 3 * mix,
        "floor_note": "multiply-adds of the IPD step over a plain forward+backward "
        "(eval.speed.pairs.floor_ratio states the counts)",
    }
