"""Stopping a local launch cleanly: SIGTERM and SIGUSR2 (what a scheduler or a user sends before
it kills) let the item in progress finish and be recorded, then the launch stops; the next run
of the same command skips everything finished. A second signal to the launcher ends it at once.

Worker processes (``cluster.workers > 1``) share the launcher's stop flag, a process-shared event:
whether the signal reaches the launcher alone (``kill PID``) or the whole process group (a
terminal, a scheduler), every process finishes its item and stops between items. A worker starts
with both signals blocked and unblocks them only once its handler is in place, so a signal that
arrives while it starts is handled, not fatal.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


class StopOnSignal:
    """While active (in the main thread), SIGTERM/SIGUSR2 set ``event``; launchers check it
    between items. ``event`` is a multiprocessing event: worker processes get it through
    ``worker_setup``."""

    def __init__(self) -> None:
        self.event = multiprocessing.get_context("spawn").Event()
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        self.event.set()
        signal.signal(signum, signal.SIG_DFL)  # a second one ends the launcher at once

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


@contextmanager
def signals_blocked() -> Iterator[None]:
    """Start worker processes inside this: they inherit the blocked mask (fork and exec keep it)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


_WORKER_STOP: Any = None


def worker_setup(stop: Any) -> None:
    """Pool initializer: keep the launcher's event; a signal only sets it (the item in progress
    finishes), however many arrive; then accept signals."""
    global _WORKER_STOP
    _WORKER_STOP = stop
    for sig in SIGNALS:
        signal.signal(sig, lambda signum, frame: stop.set())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


def worker_stop() -> Any:
    return _WORKER_STOP if _WORKER_STOP is not None else threading.Event()
