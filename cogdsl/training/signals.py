"""Stop a run cleanly: Ctrl-C (SIGINT) and SIGTERM ask the loop to stop after the current step.

A cluster sends SIGTERM before it takes a machine back (Slurm at the end of a job's time or on
preemption, Kubernetes on eviction, ``torchrun`` to its workers when one of them fails), so
SIGTERM is handled exactly like Ctrl-C: the first one asks the loop to finish its step, write a
checkpoint and exit (status 130); in a single process a second one stops at once, still saving what
the completed steps did. Under torchrun a second signal is only noted: a cluster signals every
process and torchrun forwards the signal again, and processes that stopped at different points
would wait on each other for ever; they stop together at their next agreement (within 10 steps).
Handlers can only be installed from the main thread; elsewhere (a notebook's worker thread) the
loop runs without them and a KeyboardInterrupt still stops it.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal:
    """Within the ``with`` block, the first SIGINT or SIGTERM sets :attr:`requested`; with ``escalate`` the next
    raises ``KeyboardInterrupt``. The previous handlers are put back on exit."""

    def __init__(self, escalate: bool = True) -> None:
        self.escalate = escalate
        self.requested = False
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            if self.escalate:
                raise KeyboardInterrupt
            return  # several processes: they stop together at their next agreement
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        again = "Ctrl-C" if signum == signal.SIGINT else "the signal"
        then = f" ({again} again to stop at once)" if self.escalate else ""
        print(f"\n{self.signal_name}: stopping after this step and saving a checkpoint{then}", file=sys.stderr,
              flush=True)

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
