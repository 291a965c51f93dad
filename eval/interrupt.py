"""SIGINT / SIGTERM as an exception, so a run can stop its workers and say what it finished.

:func:`handle_signals` turns either signal into :class:`Interrupted` raised in the main thread
(where the runner waits on its executor); the runner then stops the workers, marks run.json
interrupted, writes the summary of what finished and exits ``128 + signal`` (130 for Ctrl-C,
143 for SIGTERM), the shell convention. ``Interrupted`` is a ``BaseException`` so that a
method's ``except Exception`` can't swallow it.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):  # noqa: N818  (a signal, not an error)
    """The run got SIGINT or SIGTERM; ``exit_code`` is ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def _raise(signum, frame) -> None:
    # Ignore further signals while the run winds down (a second Ctrl-C must not cut the
    # summary short); the handlers are restored when handle_signals exits.
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    raise Interrupted(signum)


@contextmanager
def handle_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` (main thread only)."""
    old = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, _raise)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def keep_signal_handlers() -> Iterator[None]:
    """Restore the SIGINT/SIGTERM handlers after the block: a library that installs its own
    (``ray.init`` exits 1 on SIGTERM with its crash dump) must not replace the runner's, which
    marks the run interrupted and exits 143."""
    old = {s: signal.getsignal(s) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            if h is not None and signal.getsignal(s) is not h:
                try:
                    signal.signal(s, h)
                except ValueError:  # not the main thread: nothing was installed here either
                    pass
