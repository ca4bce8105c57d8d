"""Per-stage caches: a stage's records and outputs live in ``<run_root>/cache/<stage>/<key>/``, and
a run folder's ``<stage>`` is a link to the entry its config selects.

A stage's key hashes the stage's own result-affecting fields (``Stage.key_fields``: its sections,
e.g. score's ``reward``) and the keys of its upstream stages, so it names everything the stage's
work depends on and nothing else. Two runs that differ only in the reward share the prepare and
sample entries and have their own score entries; a new ``evaluate.*`` setting gets a new evaluate
entry and keeps everything upstream. The records inside an entry still carry the content digests
of their outputs and inputs (``pipeline.runner``), so a reused entry is only trusted as far as its
files hash to what was recorded. Best-of-N candidates are shared one level finer, by seed and
condition digest (``CandidatePool``), so growing N generates only the new ones.

The run's own page (report) stays in the run folder. A folder made before the caches has its
stages as plain folders, which are kept and read as they are.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.files import atomic_path, atomic_write_text, file_digest, json_digest
from pipeline.locks import FileLock

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.store import RunStore

CACHE_DIR = "cache"  # under run_root, beside the experiments
CACHED = ("prepare", "sample", "score", "select", "conform", "evaluate")
ENTRY_FILE = "entry.json"


def stage_keys(cfg: Config) -> dict[str, str]:
    """The cache key of every stage: its own fields and its upstream stages' keys."""
    from pipeline.config import STAGE_ORDER
    from pipeline.stages import STAGES

    keys: dict[str, str] = {}
    for name in STAGE_ORDER:
        cls = STAGES[name]
        keys[name] = json_digest(_key_source(cls, cfg, keys))[:16]
    return keys


def _key_source(cls: Any, cfg: Config, keys: dict[str, str]) -> dict[str, Any]:
    return {
        "stage": cls.name,
        "fields": cls.key_fields(cls.sections_of(cfg)),
        "upstream": {up: keys[up] for up in cls.upstream},
    }


def cache_root(run_root: str | os.PathLike) -> Path:
    return Path(run_root) / CACHE_DIR


def link_stages(store: RunStore, cfg: Config) -> dict[str, str]:
    """Point the run folder's cached stages at their entries (made if new; a link to another
    entry is replaced; a folder from before the caches is left as it is). Returns the keys."""
    keys = stage_keys(cfg)
    root = store.cache  # beside the run folder's experiment, wherever the command runs from
    with cache_lock(root, "link"):
        _link(store, cfg, keys, root)
    return keys


def cache_lock(root: Path, what: str) -> FileLock:
    """Linking and pruning exclude each other: a prune never sees an entry made but not yet linked."""
    lock = FileLock(root / ".lock")
    lock.acquire(wait=True, command=what)
    return lock


def _link(store: RunStore, cfg: Config, keys: dict[str, str], root: Path) -> None:
    if any((store.root / name).is_dir() and not (store.root / name).is_symlink() for name in CACHED):
        # a run folder from before the caches stays whole: a stage linked into a shared entry
        # downstream of its own plain folders would share records built from other inputs
        return
    for name in CACHED:
        entry = root / name / keys[name]
        entry.mkdir(parents=True, exist_ok=True)
        meta = entry / ENTRY_FILE
        if not meta.exists():
            source = _key_source(_stage_class(name), cfg, keys)
            atomic_write_text(meta, json.dumps({"key": keys[name], **source}, indent=1, default=str))
        link = store.root / name
        target = os.path.relpath(entry, store.root)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        tmp = store.root / f".{name}.link.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        os.replace(tmp, link)  # atomic: a reader sees the old entry or the new one


def _stage_class(name: str) -> Any:
    from pipeline.stages import STAGES

    return STAGES[name]


@dataclass
class Entry:
    stage: str
    key: str
    path: Path
    items: int  # records done
    bytes: int
    runs: list[Path]  # run folders linking to it


def run_folders(run_root: Path) -> Iterator[Path]:
    for run_json in sorted(Path(run_root).glob("*/*/run.json")):
        if run_json.parent.parent.name != CACHE_DIR:
            yield run_json.parent


def entries(run_root: str | os.PathLike) -> list[Entry]:
    """Every stage entry under ``run_root``, with the run folders that use it."""
    root = cache_root(run_root)
    users: dict[Path, list[Path]] = {}
    for run in run_folders(Path(run_root)):
        for name in CACHED:
            link = run / name
            if link.is_symlink():
                users.setdefault(link.resolve(), []).append(run)
    out = []
    for name in CACHED:
        for path in sorted(p for p in (root / name).glob("*") if p.is_dir()):
            done = 0
            for rec in (path / "items").glob("*.json"):
                try:
                    done += json.loads(rec.read_text()).get("status") == "done"
                except (OSError, json.JSONDecodeError):
                    pass
            out.append(Entry(name, path.name, path, done, _size(path), users.get(path.resolve(), [])))
    return out


def _size(path: Path) -> int:
    return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def prune(run_root: str | os.PathLike, dry_run: bool = False) -> tuple[list[Entry], list[Path]]:
    """Remove the entries no run folder links to, and the pooled candidates no remaining entry
    holds (a pooled video's other hard links are the entries' copies). Returns what was (or
    would be) removed."""
    with cache_lock(cache_root(run_root), "prune"):
        gone = [e for e in entries(run_root) if not e.runs]
        pool = CandidatePool(cache_root(run_root))
        leaving = Counter(_inode(f) for e in gone for f in e.path.rglob("*.mp4") if f.is_file() and not f.is_symlink())
        orphans = [v for v in pool.videos() if v.stat().st_nlink - leaving[_inode(v)] <= 1]
        if not dry_run:
            for e in gone:
                shutil.rmtree(e.path)
            for video in orphans:
                pool.remove(video)
    return gone, orphans


def _inode(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


class CandidatePool:
    """Candidates of independent-seed strategies (best-of-N), shared by every sample entry of the
    same generator settings: ``candidates/<generator key>/<condition digest>/seed<S>.mp4`` with a
    sidecar naming the video's digest and frame count. A sample entry hard-links what it takes
    (one copy on disk; a file system without hard links gets a copy)."""

    DIR = "candidates"

    def __init__(self, cache: Path):
        self.root = Path(cache) / self.DIR

    def path(self, generator_key: str, condition: str, seed: int) -> Path:
        return self.root / generator_key / condition[:16] / f"seed{seed}.mp4"

    @staticmethod
    def _sidecar(video: Path) -> Path:
        return video.with_suffix(".json")

    @classmethod
    def sidecar(cls, video: Path) -> dict[str, Any] | None:
        """The sidecar as written, unchecked (None when there is none)."""
        try:
            return json.loads(cls._sidecar(video).read_text())
        except (OSError, json.JSONDecodeError):
            return None

    @classmethod
    def lookup(cls, video: Path) -> dict[str, Any] | None:
        """The sidecar of a pooled video whose content is still what it says, else None."""
        try:
            meta = json.loads(cls._sidecar(video).read_text())
            return meta if file_digest(video) == meta["sha256"] else None
        except (OSError, json.JSONDecodeError, KeyError):
            return None

    @classmethod
    def put(cls, video: Path, source: Path, meta: dict[str, Any]) -> None:
        """Add ``source`` (a finished candidate) as ``video``; its sidecar last, so a video with
        a sidecar is complete."""
        link_or_copy(source, video)
        atomic_write_text(cls._sidecar(video), json.dumps({**meta, "sha256": file_digest(video)}))

    def videos(self) -> list[Path]:
        return sorted(self.root.glob("*/*/seed*.mp4"))

    def orphans(self) -> list[Path]:
        return [v for v in self.videos() if v.stat().st_nlink <= 1]

    def remove(self, video: Path) -> None:
        self._sidecar(video).unlink(missing_ok=True)
        video.unlink(missing_ok=True)


def link_or_copy(source: Path, dest: Path) -> None:
    """``dest`` becomes ``source``'s content atomically: a hard link where the file system allows."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
        os.replace(tmp, dest)
    except OSError:
        tmp.unlink(missing_ok=True)
        with atomic_path(dest, suffix=dest.suffix) as out:
            shutil.copyfile(source, out)


def check_experiment_name(name: str) -> list[str]:
    """The run root's own folders are not experiment names."""
    from pipeline.sweeps import SWEEPS_DIR

    reserved = {CACHE_DIR: "the stage caches", SWEEPS_DIR: "the sweeps"}
    if "/" in name or name in ("", ".", ".."):
        return [f"name={name!r}: one folder name (no '/'): runs are <run_root>/<name>/<run_key>"]
    if name in reserved:
        return [f"name={name!r}: the run root's {name}/ folder holds {reserved[name]}; choose another name"]
    return []
