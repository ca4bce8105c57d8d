"""The run folder: run key, per-item records written atomically, content digests.

Layout::

    <run_root>/<experiment>/<run_key>/
      config.yaml  resolved.yaml  run.json  manifest.parquet
      <stage>/items/<item_id>.json   one record per item
      <stage>/outputs/...            videos, images, tables
      <stage>/logs/
    <run_root>/cache/<stage>/<stage_key>/   what <stage> links to (``pipeline.stage_cache``)

A record names its outputs relative to the run folder and carries a digest of their content and
the digests of the upstream records it was computed from, so a stage knows when its work is still
valid without trusting file existence alone.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import PipelineError, StageError
from pipeline.fields import result_fields
from pipeline.files import append_jsonl, atomic_write_text, file_digest, json_digest, read_jsonl
from pipeline.locks import FileLock
from pipeline.worker import worker_identity

if TYPE_CHECKING:
    from pipeline.config import Config


def run_key(cfg: Config) -> str:
    """Hash of every result-affecting field; the experiment name is the folder above it."""
    fields = result_fields(cfg)
    fields.pop("name", None)
    return json_digest(fields)[:12]


@dataclass
class Record:
    item: str
    status: str  # done | failed
    outputs: dict[str, str] = field(default_factory=dict)  # name -> path relative to the run folder
    data: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)  # upstream stage -> digest it was built from
    digest: str = ""  # of the outputs' contents and ``data``
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # output -> sha256 (and size, for reading)
    attempt: int = 1
    started: float = 0.0
    seconds: float = 0.0
    error: str = ""

    @property
    def done(self) -> bool:
        return self.status == "done"


class RunStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    @classmethod
    def for_config(cls, cfg: Config) -> RunStore:
        """The run folder of ``cfg`` (made if new; an existing one must carry the same run key)."""
        key = run_key(cfg)
        store = cls(Path(cfg.run_root) / cfg.name / key)
        try:
            store.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PipelineError(
                f"run_root={cfg.run_root}: cannot make the run folder {store.root}: {exc.strerror}"
            ) from None
        meta = {"experiment": cfg.name, "run_key": key, "result_fields": result_fields(cfg)}
        run_json = store.root / "run.json"
        if run_json.exists():
            previous = json.loads(run_json.read_text())
            if previous.get("run_key") != key:
                raise PipelineError(f"{run_json} belongs to run key {previous.get('run_key')}, not {key}")
        else:
            atomic_write_text(run_json, json.dumps(meta, indent=2, default=str))
        store.link_stages(cfg)
        return store

    def link_stages(self, cfg: Config) -> None:
        """The run's stages as links to their per-stage cache entries (``pipeline.stage_cache``)."""
        from pipeline.stage_cache import link_stages

        link_stages(self, cfg)

    def save_config(self, composed_yaml: str, resolved_yaml: str) -> None:
        """The config this launch runs with (resources as last used); by the folder's writer."""
        atomic_write_text(self.root / "config.yaml", composed_yaml)
        atomic_write_text(self.root / "resolved.yaml", resolved_yaml)

    def outputs_dir(self, stage: str) -> Path:
        return self.root / stage / "outputs"

    def rel(self, path: Path) -> str:
        """``path`` relative to the run folder, through the stage links (not resolved: a stage's
        folder is a link into the cache, and the record must name it as the run sees it)."""
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(self.root))
        if rel.startswith(".."):
            raise ValueError(f"{path} is not inside the run folder {self.root}")
        return rel

    @property
    def cache(self) -> Path:
        """The stage caches of the run root this folder is in (``<run_root>/<name>/<key>``)."""
        from pipeline.stage_cache import CACHE_DIR

        return self.root.parent.parent / CACHE_DIR

    def path(self, rel: str) -> Path:
        return self.root / rel

    def _record_path(self, stage: str, item_id: str) -> Path:
        return self.root / stage / "items" / f"{item_id}.json"

    def read(self, stage: str, item_id: str) -> Record | None:
        path = self._record_path(stage, item_id)
        try:
            return Record(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, TypeError):
            return None  # a record from a foreign or broken writer is treated as absent

    def require(self, stage: str, item_id: str) -> Record:
        """The record of an item that must exist (an upstream input); StageError if it does not."""
        record = self.read(stage, item_id)
        if record is None:
            raise StageError(f"{stage} {item_id}: no record in {self.root} (run {stage} first)")
        return record

    def write(self, stage: str, record: Record) -> Record:
        record.files = {name: self._fingerprint(rel) for name, rel in sorted(record.outputs.items())}
        record.digest = self._digest(record.files, record.data)
        atomic_write_text(self._record_path(stage, record.item), json.dumps(asdict(record), indent=1, default=str))
        return record

    def _fingerprint(self, rel: str) -> dict[str, Any]:
        return {"sha256": file_digest(self.path(rel)), "size": os.path.getsize(self.path(rel))}

    def intact(self, record: Record) -> bool:
        """Whether the outputs on disk are the ones the record was written with: every file
        present and hashing, with the record's data, to the record's digest. Every file is hashed
        each time: size and mtime cannot vouch for content (mtime ticks are milliseconds wide)."""
        try:
            return self.content_digest(record) == record.digest
        except OSError:
            return False

    def item_lock(self, stage: str, item_id: str) -> FileLock:
        """Held by whoever works on the item, in any launch: one process per item at a time."""
        return FileLock(self.root / stage / "locks" / f"{item_id}.lock")

    def writer_lock(self) -> FileLock:
        """Held by a launch (a local run, or a SLURM submission while it plans and submits)."""
        return FileLock(self.root / "launch" / "writer.lock")

    def records(self, stage: str, item_ids: Iterable[str]) -> dict[str, Record | None]:
        return {i: self.read(stage, i) for i in item_ids}

    def log_attempt(self, stage: str, item_id: str, event: dict[str, Any]) -> None:
        """Append one line to the item's attempt history (start, then done/failed). A start with no
        end is an attempt that was killed; finished items show exactly one start."""
        append_jsonl(
            self.root / stage / "attempts" / f"{item_id}.jsonl", {**event, "time": time.time(), **worker_identity()}
        )

    def attempts(self, stage: str, item_id: str) -> list[dict[str, Any]]:
        return read_jsonl(self.root / stage / "attempts" / f"{item_id}.jsonl")

    def content_digest(self, record: Record) -> str:
        """The digest of the record's outputs as they are on disk now (every file hashed)."""
        files = {name: self._fingerprint(rel) for name, rel in sorted(record.outputs.items())}
        return self._digest(files, record.data)

    @staticmethod
    def _digest(files: dict[str, dict[str, Any]], data: dict[str, Any]) -> str:
        return json_digest({"files": {name: f["sha256"] for name, f in files.items()}, "data": data})
