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

from pipeline.errors import PipelineError

_HELD: set[int] = set()  # descriptors of the locks this process holds


def _forget_in_child() -> None:
    # A forked child (a worker pool) inherits the descriptors, and with them the locks: were the
    # parent killed, the child would keep the run folder locked. The child closes its copies; the
    # parent's own descriptors keep holding the locks.
    for fd in list(_HELD):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_in_child)


class FileLock:
    """A non-blocking exclusive lock on ``path``; the holder's identity is written into the file so
    a refused caller can say who holds it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, wait: bool = False, **about: Any) -> bool:
        """Take the lock (False: someone holds it; ``wait=True`` blocks until they let go)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError as exc:
            os.close(fd)
            raise PipelineError(
                f"cannot lock {self.path}: {exc.strerror} (the file system must support "
                "flock; on Lustre, mount it with the flock option)"
            ) from None
        try:
            holder = {"host": os.uname().nodename, "pid": os.getpid(), "since": time.time(), **about}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        except OSError:
            pass  # who holds it is only for messages; the lock is what counts
        self._fd = fd
        _HELD.add(fd)
        return True

    def release(self) -> None:
        if self._fd is not None:
            _HELD.discard(self._fd)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def holder(self) -> dict[str, Any]:
        """Who wrote the file last (the holder while it is locked); {} when unreadable."""
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def describe_holder(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    what = f" ({holder['command']})" if holder.get("command") else ""
    return f"pid {holder.get('pid')} on {holder.get('host')} since {since}{what}"
