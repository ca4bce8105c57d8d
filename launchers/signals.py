"""Stopping a local launch cleanly: SIGTERM and SIGUSR2 (what a scheduler or a user sends before
it kills) let the item in progress finish and be recorded, then the launch stops; the next run
of the same command skips everything finished. A second signal ends the process at once.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading

SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


class StopOnSignal:
    """While active, SIGTERM/SIGUSR2 set ``event`` (checked between items) and are passed on to
    this process's worker processes, which finish their own items the same way."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():  # handlers live in the main thread
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
        signal.signal(signum, signal.SIG_DFL)
        for child in multiprocessing.active_children():
            try:
                os.kill(child.pid, signum)
            except OSError:
                pass

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


_WORKER: StopOnSignal | None = None


def install_in_worker() -> None:
    """Pool initializer: a worker process stops between items on the signals its parent passes on."""
    global _WORKER
    _WORKER = StopOnSignal().__enter__()


def worker_stop() -> threading.Event:
    return _WORKER.event if _WORKER is not None else threading.Event()
