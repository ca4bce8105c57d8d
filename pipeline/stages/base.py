"""What every stage declares: its items, its upstream stages, how to run one item and how to tell a
finished output is still valid. Stages never know whether they run locally or on a cluster; the
launcher decides what to run from ``pending()``.
"""

from __future__ import annotations

import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pipeline.errors import DISK_ERRNOS, DiskFullError
from pipeline.files import json_digest
from pipeline.store import Record, RunStore

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.items import Manifest

ALL = "all"  # the single item of an aggregating stage


@dataclass
class Output:
    """What ``run`` returns: files written (name -> path relative to the run folder) and results."""

    outputs: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


class Stage(ABC):
    name: ClassVar[str]
    upstream: ClassVar[tuple[str, ...]] = ()
    aggregate: ClassVar[bool] = False  # one unit of work over all items

    def __init__(self, cfg: Config, store: RunStore, manifest: Manifest):
        self.cfg = cfg
        self.store = store
        self.manifest = manifest

    # ---- what to do -------------------------------------------------------------------------
    def items(self) -> list[str]:
        return [ALL] if self.aggregate else self.manifest.ids()

    def inputs(self, item_id: str) -> dict[str, str] | None:
        """Digests of the upstream records this item depends on; None while any is not done."""
        from pipeline.stages import STAGES

        digests = {}
        for up in self.upstream:
            if self.aggregate and not STAGES[up].aggregate:
                recs = self.store.records(up, self.manifest.ids())
                if not all(r is not None and r.done for r in recs.values()):
                    return None
                digests[up] = json_digest({i: r.digest for i, r in recs.items() if r is not None})
            else:
                rec = self.store.read(up, ALL if STAGES[up].aggregate else item_id)
                if rec is None or not rec.done:
                    return None
                digests[up] = rec.digest
        return digests

    def is_done(self, item_id: str) -> bool:
        rec = self.store.read(self.name, item_id)
        if rec is None or not rec.done or rec.inputs != self.inputs(item_id) or not self.store.intact(rec):
            return False
        try:
            self.validate(rec)
        except Exception:
            return False
        return True

    # ---- stage-specific ---------------------------------------------------------------------
    def preflight(self) -> None:
        """Cheap checks that must pass before any stage of the chain starts (checkpoints exist)."""

    def setup(self) -> None:
        """Load models or other expensive state; called only when some item needs work."""

    @abstractmethod
    def run(self, item_id: str) -> Output: ...

    def validate(self, record: Record) -> None:
        """Raise if the outputs of a finished record can no longer be trusted, beyond their
        content digest (which the store checks): e.g. a video that must decode."""

    def cost(self, item_id: str) -> float:
        """Relative work of an item, for balancing shards (sample overrides it)."""
        return 1.0

    def follow(self, item_id: str) -> None:
        """On a non-leader rank of a multi-rank replica: take part in the leader's work on
        ``item_id`` (collective model calls) without writing anything. Stages whose models are
        not split across ranks have nothing to do here."""

    def close(self) -> None:
        """Release what ``setup`` loaded."""

    # ---- one unit of work, recorded -----------------------------------------------------------
    def execute(self, item_id: str) -> Record:
        inputs = self.inputs(item_id)
        previous = self.store.read(self.name, item_id)
        attempt = (previous.attempt + 1) if previous else 1
        started = time.time()
        try:
            self.store.log_attempt(self.name, item_id, {"event": "start", "attempt": attempt})
            try:
                out = self.run(item_id)
                record = Record(
                    item=item_id,
                    status="done",
                    outputs=out.outputs,
                    data=out.data,
                    inputs=inputs or {},
                    attempt=attempt,
                    started=started,
                )
            except Exception as exc:  # recorded, reported by the launcher, the other items go on
                if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
                    raise
                record = Record(
                    item=item_id,
                    status="failed",
                    inputs=inputs or {},
                    attempt=attempt,
                    started=started,
                    error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}",
                )
            record.seconds = time.time() - started
            record = self.store.write(self.name, record)
        except OSError as exc:
            if exc.errno not in DISK_ERRNOS:
                raise
            # Not the item's fault: no attempt is spent, nothing partial is recorded, the run stops.
            raise DiskFullError(
                f"{self.name} {item_id}: {exc.strerror} ({exc.filename or self.store.root}); "
                "free space and run the same command again: finished items are kept"
            ) from None
        self.store.log_attempt(
            self.name, item_id, {"event": record.status, "attempt": attempt, "seconds": round(record.seconds, 3)}
        )
        return record

    def state(self, item_id: str, max_attempts: int) -> str:
        """done | blocked (upstream not done) | exhausted (failed max_attempts times) | todo."""
        if self.inputs(item_id) is None:
            return "blocked"
        if self.is_done(item_id):
            return "done"
        rec = self.store.read(self.name, item_id)
        if rec is not None and rec.status == "failed" and rec.attempt >= max_attempts:
            return "exhausted"
        return "todo"
