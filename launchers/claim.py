"""Who works on an item. Two processes never work on the same item of a run, whichever launches
they belong to (local runs, SLURM shards, a second submission): each item is worked on under its
lock (``RunStore.item_lock``), and its state is checked again once the lock is held, so an item
finished meanwhile is never redone. Within one run of one job, a claim file also keeps the
job's replicas from retrying an item another replica just failed (retries wait for a resume).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError, StageError
from pipeline.runner import execute, item_state

if TYPE_CHECKING:
    from pipeline.stages.base import Stage
    from pipeline.store import Record


def run_item(stage: Stage, item_id: str, max_attempts: int, before: Callable[[], None] | None = None) -> Record | None:
    """Execute the item if it still needs work and nobody else holds it; ``before`` runs once the
    item is ours (load models, tell followers). None: busy elsewhere, or no longer to do."""
    lock = stage.store.item_lock(stage.name, item_id)
    if not lock.acquire(stage=stage.name, item=item_id):
        return None
    try:
        if item_state(stage, item_id, max_attempts) != "todo":
            return None
        if before is not None:
            before()
        return execute(stage, item_id)
    finally:
        lock.release()


class LazySetup:
    """A stage's ``setup`` run once, when its first item is ours; a failure to start is a
    StageError naming the stage (or the PipelineError the stage raised)."""

    def __init__(self, stage: Stage):
        self.stage = stage
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        try:
            self.stage.setup()
        except PipelineError:
            raise
        except Exception as exc:
            raise StageError(f"{self.stage.name}: cannot start: {exc}") from exc
        self.done = True

    def close(self) -> None:
        if self.done:
            self.stage.close()
            self.done = False


def claim(claims_dir: Path, item_id: str) -> bool:
    """Exclusive per-item claim among the replicas of one job run (O_EXCL create)."""
    claims_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(claims_dir / item_id, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)
    return True
