"""One writer per run folder (D2): an exclusive ``flock`` on ``<out>/.lock`` held for the run.

A second ``eval.run`` into the same folder, whatever its flags (``--overwrite``, ``--resume``),
is refused with exit 2 before it writes anything; the lock goes with the process (also when it
is killed), so a stale ``.lock`` file never blocks a later run.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK = ".lock"


class FolderLocked(ValueError):
    """Another process is writing this run folder."""


class FolderLock:
    """An exclusive lock on a run folder; ``release`` (or process exit) frees it."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 64).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            raise FolderLocked(
                f"{self.folder} is being written by another eval.run (pid {holder}); "
                "wait for it to finish or pass another --out"
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
