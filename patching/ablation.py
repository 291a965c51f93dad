"""Ablated source outputs, one function per ablation kind (a table, not an if-chain).

Each takes ``(model, clean, corrupted, reference, attention_mask, reference_mask)``; the masks
(True at real tokens) are None for unpadded batches.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _resample(
    model, clean: Tensor, corrupted: Tensor | None, reference: Tensor | None, mask=None, _rm=None
) -> Tensor:
    if corrupted is None:
        raise ValueError("resample ablation needs corrupted tokens paired with the clean ones")
    if corrupted.shape != clean.shape:
        raise ValueError(
            f"clean and corrupted batches must have the same shape for resample ablation, got "
            f"{tuple(clean.shape)} and {tuple(corrupted.shape)}"
        )
    return model.source_outputs(corrupted, attention_mask=mask)


def _mean(
    model, clean: Tensor, corrupted: Tensor | None, reference: Tensor | None, mask=None, rm=None
) -> Tensor:
    ref = corrupted if reference is None else reference
    if ref is None:
        raise ValueError("mean ablation needs reference tokens (or corrupted tokens) to average")
    if ref.dim() != 2 or ref.shape[1] != clean.shape[1]:
        raise ValueError(
            f"mean-ablation reference must be [n, {clean.shape[1]}] tokens, got {tuple(ref.shape)}"
        )
    ref_mask = rm if rm is not None else (mask if reference is None else None)
    values = model.source_outputs(ref, attention_mask=ref_mask)
    if ref_mask is None:
        return values.mean(dim=1, keepdim=True)
    # padded reference: at each position, the mean over the examples with a real token there
    w = ref_mask.to(device=values.device, dtype=values.dtype)[None, :, :, None]
    return (values * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp(min=1)


def _zero(
    model, clean: Tensor, corrupted: Tensor | None, reference: Tensor | None, mask=None, _rm=None
) -> Tensor:
    g, cfg = model.graph, model.cfg
    return torch.zeros(
        g.n_sources, 1, clean.shape[1], cfg.d_model, dtype=model.dtype, device=model.device
    )


ABLATION_KINDS: dict[str, Callable[..., Tensor]] = {
    "resample": _resample,
    "mean": _mean,
    "zero": _zero,
}
