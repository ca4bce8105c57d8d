"""The bookkeeping around a stage's work, in one place: which upstream records an item was built
from, whether its record still stands, its state, and running it with its record and attempt log.
Stages only declare (``pipeline.stages.base``); launchers decide where and when this runs.

An item is ``done`` when its record says so, was built from the upstream records that stand
now, its files still hash to the record's digest, and the stage's own ``validate`` passes;
``blocked`` while an upstream record it needs is not done; ``exhausted`` after failing
``max_attempts`` times; ``todo`` otherwise.
"""

from __future__ import annotations

import time
import traceback
from typing import TYPE_CHECKING

from pipeline.errors import DISK_ERRNOS, DiskFullError
from pipeline.files import json_digest
from pipeline.stages import STAGES
from pipeline.stages.base import ALL
from pipeline.store import Record

if TYPE_CHECKING:
    from pipeline.stages.base import Stage

STATES = ("done", "blocked", "exhausted", "todo")


def upstream_digests(stage: Stage, item_id: str) -> dict[str, str] | None:
    """Digests of the upstream records ``item_id`` depends on; None while any is not done."""
    digests = {}
    for up in stage.upstream:
        if stage.aggregate and not STAGES[up].aggregate:
            recs = stage.store.records(up, stage.manifest.ids())
            if not all(r is not None and r.done for r in recs.values()):
                return None
            digests[up] = json_digest({i: r.digest for i, r in recs.items() if r is not None})
        else:
            rec = stage.store.read(up, ALL if STAGES[up].aggregate else item_id)
            if rec is None or not rec.done:
                return None
            digests[up] = rec.digest
    return digests


def is_done(stage: Stage, item_id: str) -> bool:
    rec = stage.store.read(stage.name, item_id)
    if rec is None or not rec.done or rec.inputs != upstream_digests(stage, item_id):
        return False
    if not stage.store.intact(rec):
        return False
    try:
        stage.validate(rec)
    except Exception:
        return False
    return True


def item_state(stage: Stage, item_id: str, max_attempts: int) -> str:
    """done | blocked | exhausted | todo (see the module docstring)."""
    if upstream_digests(stage, item_id) is None:
        return "blocked"
    if is_done(stage, item_id):
        return "done"
    rec = stage.store.read(stage.name, item_id)
    if rec is not None and rec.status == "failed" and rec.attempt >= max_attempts:
        return "exhausted"
    return "todo"


def classify(stage: Stage, max_attempts: int) -> dict[str, list[str]]:
    """The stage's items by state, in item order."""
    out: dict[str, list[str]] = {state: [] for state in STATES}
    for item in stage.items():
        out[item_state(stage, item, max_attempts)].append(item)
    return out


def execute(stage: Stage, item_id: str) -> Record:
    """Run one item and record it (done or failed, with the error); the attempt log gets a start
    and an end line. A file system that refuses writes is not the item's fault: no attempt is
    spent, nothing partial is recorded, and DiskFullError stops the launch."""
    inputs = upstream_digests(stage, item_id)
    previous = stage.store.read(stage.name, item_id)
    attempt = (previous.attempt + 1) if previous else 1
    started = time.time()
    try:
        stage.store.log_attempt(stage.name, item_id, {"event": "start", "attempt": attempt})
        try:
            out = stage.run(item_id)
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
        record = stage.store.write(stage.name, record)
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        raise DiskFullError(
            f"{stage.name} {item_id}: {exc.strerror} ({exc.filename or stage.store.root}); "
            "free space and run the same command again: finished items are kept"
        ) from None
    stage.store.log_attempt(
        stage.name, item_id, {"event": record.status, "attempt": attempt, "seconds": round(record.seconds, 3)}
    )
    return record
