"""Upper bounds on the sizes a command accepts, checked before any work (exit 2).

A size far beyond any useful run (``--seeds 100000000000``) would otherwise be accepted and grow
until the kernel's OOM killer ends the process; each bound is orders of magnitude above what
the suite's runs use, so only absurd values are refused.
"""

from __future__ import annotations

MAX_SEEDS = 10_000  # eval.run --seeds: jobs are methods x tasks x seeds
MAX_N = 1_000_000  # eval.run --n: train examples per run (memory grows with n)
MAX_REPEATS = 10_000  # eval.speed --repeats / --layerwise-repeats
MAX_BATCH = 4096  # patching.verify --batch
MAX_POS = 8192  # patching.verify --pos (tokens per prompt)


class SizeError(ValueError):
    """A size argument outside what the command accepts."""


def check_size(flag: str, value: int, high: int, low: int = 1) -> None:
    """``low <= value <= high`` or SizeError naming the flag, its value and the bounds."""
    if value < low:
        raise SizeError(f"{flag} must be at least {low}, got {value}")
    if value > high:
        raise SizeError(
            f"{flag} {value} is above the limit {high} (core.limits); a run that large would "
            "exhaust memory long before it finished"
        )
