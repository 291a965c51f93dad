"""Test-only entries for the runner's fault tests (imported by a fixture or ``--plugin``).

``_test-exit`` calls ``sys.exit(0)`` (D11); ``_test-hang`` sleeps far past any test timeout;
``_test-slow`` sleeps ``SLOW_S`` then scores like ``_test-grad`` (time to send a signal);
``_test-flaky`` SIGKILLs its own process the first time it runs (a marker file remembers), then
scores like ``_test-grad``: a killed worker whose job a retry finishes. ``_test-empty`` is
``_test-tiny`` with an empty ground truth (D10). ``_test-keyboard`` raises KeyboardInterrupt.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from methods.base import Method, register_method
from tasks.base import register_task
from tests.eval.tiny import TinyTask, _grad_scores

SLOW_S = 3.0
FLAKY_MARKER = Path(tempfile.gettempdir()) / "circuitbench-test-flaky.marker"


@register_method("_test-exit")
class ExitMethod(Method):
    description = "test only: sys.exit(0)"

    def scores(self, problem):
        sys.exit(0)


@register_method("_test-hang")
class HangMethod(Method):
    description = "test only: hangs"

    def scores(self, problem):
        time.sleep(3600)


@register_method("_test-slow")
class SlowMethod(Method):
    description = f"test only: sleeps {SLOW_S} s, then the gradient"

    def scores(self, problem):
        time.sleep(SLOW_S)
        return _grad_scores(problem)


@register_method("_test-flaky")
class FlakyMethod(Method):
    description = "test only: its process is killed the first time, then the gradient"

    def scores(self, problem):
        if not FLAKY_MARKER.exists():
            FLAKY_MARKER.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return _grad_scores(problem)


@register_task("_test-empty")
class EmptyTruthTask(TinyTask):
    description = "test only: empty ground truth"

    def _ground_truth(self, graph, ablation):
        return set()


@register_method("_test-keyboard")
class KeyboardMethod(Method):
    description = "test only: raises KeyboardInterrupt (Ctrl-C inside an --inline method)"

    def scores(self, problem):
        raise KeyboardInterrupt
