"""Cost measurement: wall time with device synchronisation, and peak memory.

GPU: the caching allocator's peak (``torch.cuda.max_memory_allocated``) since the method started.
CPU: the peak resident set size of the process (``getrusage``); it is the method's peak only
when the process ran nothing else, which is why the runner gives each (method, task, seed) its
own process. ``start_mb`` (memory when the method starts: imports, model, data) shows the
method's own share as ``peak_mb - start_mb``.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psutil
import torch

T = TypeVar("T")
MB = 2**20


def synchronize(device: str | torch.device) -> None:
    """Wait for queued device work, so a timer around it measures the work itself."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], device: str | torch.device) -> tuple[T, float]:
    """``fn()`` and its wall seconds, synchronising the device before and after."""
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return out, time.perf_counter() - start


def rss_mb() -> float:
    """Current resident set size of this process in MiB."""
    return psutil.Process().memory_info().rss / MB


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (ru_maxrss: KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


@dataclass
class MemoryProbe:
    """Start and peak memory around one method call on ``device``.

    isolated: the process runs only this method (CPU peak RSS is then the method's peak);
        when False on CPU the peak can't be attributed and is reported as NaN.
    """

    device: str
    isolated: bool = True

    @property
    def kind(self) -> str:
        if torch.device(self.device).type == "cuda":
            return "cuda-allocator"
        return "cpu-rss-process" if self.isolated else "cpu-rss-shared"

    def start(self) -> float:
        """Reset the peak counter where possible; the memory now (at the start) in MiB."""
        device = torch.device(self.device)
        if device.type == "cuda":
            synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            return torch.cuda.memory_allocated(device) / MB
        return rss_mb()

    def peak(self) -> float:
        """Peak memory in MiB since :meth:`start` (GPU) or over the process's life (CPU)."""
        device = torch.device(self.device)
        if device.type == "cuda":
            synchronize(device)
            return torch.cuda.max_memory_allocated(device) / MB
        return peak_rss_mb() if self.isolated else math.nan
