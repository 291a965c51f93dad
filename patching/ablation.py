"""Ablated source outputs, one function per ablation kind (a table, not an if-chain)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _resample(model, clean: Tensor, corrupted: Tensor | None, reference: Tensor | None) -> Tensor:
    if corrupted is None:
        raise ValueError("resample ablation needs corrupted tokens paired with the clean ones")
    if corrupted.shape != clean.shape:
        raise ValueError(
            f"clean and corrupted batches must have the same shape for resample ablation, got "
            f"{tuple(clean.shape)} and {tuple(corrupted.shape)}"
        )
    return model.source_outputs(corrupted)


def _mean(model, clean: Tensor, corrupted: Tensor | None, reference: Tensor | None) -> Tensor:
    ref = corrupted if reference is None else reference
    if ref is None:
        raise ValueError("mean ablation needs reference tokens (or corrupted tokens) to average")
    if ref.dim() != 2 or ref.shape[1] != clean.shape[1]:
        raise ValueError(
            f"mean-ablation reference must be [n, {clean.shape[1]}] tokens, got {tuple(ref.shape)}"
        )
    return model.source_outputs(ref).mean(dim=1, keepdim=True)


def _zero(model, clean: Tensor, corrupted: Tensor | None, reference: Tensor | None) -> Tensor:
    g, cfg = model.graph, model.cfg
    return torch.zeros(
        g.n_sources, 1, clean.shape[1], cfg.d_model, dtype=model.dtype, device=model.device
    )


ABLATION_KINDS: dict[str, Callable[..., Tensor]] = {
    "resample": _resample,
    "mean": _mean,
    "zero": _zero,
}
