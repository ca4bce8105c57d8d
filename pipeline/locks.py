"""Advisory file locks (``flock``) for the run folder: released by the kernel when the holder dies,
so a ``kill -9`` never leaves a stale lock behind. On NFS, Linux maps ``flock`` to POSIX locks
that every client sees; Lustre needs its ``flock`` mount option.

Two uses: the writer lock of a whole run folder (one launch at a time writes it) and the lock of
one item of one stage (one process at a time works on it, whichever launch it belongs to).
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any


class FileLock:
    """A non-blocking exclusive lock on ``path``; the holder's identity is written into the file so
    a refused caller can say who holds it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, **about: Any) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        holder = {"host": os.uname().nodename, "pid": os.getpid(), "since": time.time(), **about}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def holder(self) -> dict[str, Any]:
        """Who wrote the file last (the holder while it is locked); {} when unreadable."""
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def __enter__(self) -> "FileLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def describe_holder(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    what = f" ({holder['command']})" if holder.get("command") else ""
    return f"pid {holder.get('pid')} on {holder.get('host')} since {since}{what}"
