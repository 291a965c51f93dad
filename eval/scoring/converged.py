"""Whether a mask-learning run converged, read off its own trace (never the ground truth).

A run whose final faithfulness loss (normalised so that the fully ablated model is ~1 and the
clean model 0) stays above :data:`CONVERGED_LOSS` ended nearer the broken model than the clean
one: its ranking comes from a failed optimisation (issue 13's finding: ``ipd`` on a saturated
tracr model ended at 0.93 and ranked edges by differences of 1e-8). Such a run is recorded as
not converged (``Record.converged`` False) and its cells in the summary carry :data:`MARK`.
Methods without a ``final_loss`` (attribution, ACDC) get None: the question does not apply.
"""

from __future__ import annotations

import math

CONVERGED_LOSS = 0.5  # final normalised faithfulness loss at or below which a run converged
MARK = "†"


def converged(final_loss: float | None) -> bool | None:
    """True when ``final_loss <= CONVERGED_LOSS``; None when there is no finite loss."""
    if final_loss is None or not math.isfinite(final_loss):
        return None
    return final_loss <= CONVERGED_LOSS


def cell_mark(flags) -> str:
    """:data:`MARK` when any run of a summary cell did not converge, else ''."""
    return MARK if any(flag is False for flag in flags) else ""


NOTE = (
    f"{MARK}: at least one run of the cell did not converge (final normalised faithfulness "
    f"loss > {CONVERGED_LOSS}; the ablated model is ~1): its ranking comes from a failed fit."
)
