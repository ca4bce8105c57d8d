"""One writer per run folder. A launch (a local run, or a SLURM submission while it plans and
submits) holds the folder's writer lock, and starts only when no job of an earlier submission
is still queued or running: a second launch on the same folder stops with one message naming
what holds it, before any work. Items are also locked one by one (``launchers.claim``), which
covers what this check cannot see (a job that squeue does not list yet).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import RunBusyError
from pipeline.locks import describe_holder

if TYPE_CHECKING:
    from pipeline.store import RunStore

LIVE_STATES = {
    "PENDING",
    "RUNNING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "CONFIGURING",
    "COMPLETING",
    "SUSPENDED",
    "RESIZING",
    "STAGE_OUT",
    "SIGNALING",
}


def live_jobs(run_dir: Path, folder: str) -> list[str]:
    """Jobs of this run's submissions that the scheduler still holds (none without SLURM)."""
    from launchers.slurm import read_submissions
    from launchers.slurm_state import job_states, state_of

    jobs = [sh["job"] for s in read_submissions(run_dir, folder) for sh in s["shards"]]
    if not jobs:
        return []
    states = job_states(jobs)
    return [j for j in jobs if state_of(states, j) in LIVE_STATES]


@contextmanager
def exclusive_launch(store: RunStore, folder: str, command: str) -> Iterator[None]:
    lock = store.writer_lock()
    if not lock.acquire(command=command):
        raise RunBusyError(
            f"run folder {store.root} is being written by {describe_holder(lock.holder())}; "
            "wait for it to finish (or stop it), then run the same command again"
        )
    try:
        live = live_jobs(store.root, folder)
        if live:
            shown = ", ".join(live[:6]) + (f" and {len(live) - 6} more" if len(live) > 6 else "")
            raise RunBusyError(
                f"run folder {store.root} has SLURM jobs of an earlier submission still queued or "
                f"running ({shown}); wait for them (python -m pipeline status run={store.root}) "
                "or scancel them, then resume"
            )
        yield
    finally:
        lock.release()
