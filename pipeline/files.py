"""Files written whole or not at all, appended line by line, and hashed: the one place for each.

``atomic_path`` hands a writer (ffmpeg, OpenCV, safetensors, numpy, ...) a temporary path in the
destination's folder; only when the writer returns is the file synced and renamed over the final
name, so a crash, a full disk or an error never leaves a partial file under that name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` (``suffix`` keeps an extension a writer needs, e.g.
    ``.tmp.mp4``); renamed to ``path`` after the block, removed if the block raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def json_digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def append_jsonl(path: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line with a single write: appends from several processes stay whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(entry, default=str) + "\n").encode())
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


TINY_MARKER = "tiny_params.json"  # what a folder made by build_folder's callers records it was made with


def build_folder(out: str | os.PathLike, build: Callable[[Path], None], complete: Callable[[Path], bool]) -> Path:
    """Make the folder ``out`` by ``build(tmp)`` into a temporary sibling, renamed into place, so a
    crash never leaves a half-written folder that looks complete. ``complete(out)`` decides whether
    the folder is there already (before building, and again after: a concurrent builder may have
    finished first). An old folder is replaced only if an earlier build made it (it holds
    ``TINY_MARKER``) or it is empty: anything else is refused, never deleted."""
    out = Path(out)
    if complete(out):
        return out
    if out.exists():
        _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        build(tmp)
        if complete(out):
            return out
        if out.exists():
            _check_replaceable(out)
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        try:
            os.replace(tmp, out)
        except OSError:
            if not complete(out):  # lost a race to another builder, which is fine if it finished
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _check_replaceable(out: Path) -> None:
    if out.is_dir() and any(out.iterdir()) and not (out / TINY_MARKER).is_file():
        raise FileExistsError(
            f"{out} exists and was not made by this builder (no {TINY_MARKER}); refusing to replace it"
        )
