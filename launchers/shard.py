"""One shard of one stage, as it runs inside a job (a SLURM array task or a local worker process).

The job's ranks form replicas of ``replica_size`` consecutive ranks (the generator's layout); the leader of each replica
claims items of the shard one at a time (``launchers.claim``: a claim per job run and the item's
run-wide lock), so a slow item never holds back the others and no other launch works on it at the
same time, and tells its followers which item to work on. Only leaders write records.

Preemption and time limits: submitit calls ``checkpoint`` on the signal before the limit. The
items run in a worker thread, so the checkpoint can let the current item finish (within the
grace time) before the job is requeued; a requeued shard skips every finished item.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launchers.claim import LazySetup, claim, run_item
from launchers.replica import ReplicaGroup
from pipeline.config import replica_dims
from pipeline.runner import item_state

if TYPE_CHECKING:
    from pipeline.config import Config

log = logging.getLogger("pipeline.shard")


class ReplicaOutOfStep(RuntimeError):
    """An item failed on a multi-rank replica's leader; its ranks can no longer follow each other."""


@dataclass
class ShardSpec:
    stage: str
    index: int
    items: list[str]
    cost: float = 0.0


@dataclass
class ShardResult:
    stage: str
    index: int
    ran: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # done, blocked, exhausted or claimed elsewhere
    stopped_early: bool = False


def job_run_id() -> str:
    """Identifies this run of this job: a requeued job gets new claims, its old ones are void."""
    env = os.environ
    if "SLURM_JOB_ID" in env:
        task = env.get("SLURM_ARRAY_TASK_ID")
        base = f"{env['SLURM_ARRAY_JOB_ID']}_{task}" if task is not None else env["SLURM_JOB_ID"]
        return f"{base}_r{env.get('SLURM_RESTART_COUNT', '0')}"
    return f"local_{os.getpid()}_{int(time.time() * 1000)}"


class ShardJob:
    """Picklable callable submitted to submitit (one per stage; the shard is its argument)."""

    def __init__(self, cfg: Config, run_dir: str, grace_s: float = 60.0):
        self.cfg = cfg
        self.run_dir = str(run_dir)
        self.grace_s = grace_s
        self._runtime: dict[str, Any] = {}

    def __getstate__(self):
        return {"cfg": self.cfg, "run_dir": self.run_dir, "grace_s": self.grace_s}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._runtime = {}

    # ---- submitit entry points -----------------------------------------------------------------
    def __call__(self, spec: ShardSpec) -> ShardResult:
        stop = threading.Event()
        outcome: dict[str, Any] = {}
        worker = threading.Thread(target=self._work, args=(spec, stop, outcome), daemon=True)
        self._runtime = {"stop": stop, "worker": worker}
        worker.start()
        while worker.is_alive():
            worker.join(timeout=1.0)  # short joins keep the main thread free for submitit's signals
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    def checkpoint(self, spec: ShardSpec):
        """Called by submitit on USR2 (time limit or preemption): finish the current item, then
        requeue the same shard; finished items are skipped when it restarts."""
        import submitit

        stop, worker = self._runtime.get("stop"), self._runtime.get("worker")
        if stop is not None and worker is not None:
            stop.set()
            worker.join(timeout=self.grace_s)
            log.warning(
                "shard %s/%d checkpointed (current item %s)",
                spec.stage,
                spec.index,
                "finished" if not worker.is_alive() else "interrupted, it will be redone",
            )
        return submitit.helpers.DelayedSubmission(ShardJob(self.cfg, self.run_dir, self.grace_s), spec)

    # ---- the work ---------------------------------------------------------------------------------
    def _work(self, spec: ShardSpec, stop: threading.Event, outcome: dict) -> None:
        try:
            outcome["result"] = self.run_shard(spec, stop)
        except BaseException as exc:  # re-raised in the main thread, where submitit reports it
            outcome["error"] = exc

    def run_shard(self, spec: ShardSpec, stop: threading.Event | None = None) -> ShardResult:
        from pipeline.items import Manifest
        from pipeline.stages import build_stage
        from pipeline.store import RunStore

        stop = stop or threading.Event()
        store = RunStore(Path(self.run_dir))
        stage = build_stage(spec.stage, self.cfg, store, Manifest.load(store))
        group = ReplicaGroup.from_env(replica_dims(self.cfg, spec.stage))
        stage.mesh = group.mesh
        result = ShardResult(spec.stage, spec.index)
        claims = store.root / spec.stage / "claims" / job_run_id()
        try:
            if group.is_leader:
                self._lead(stage, spec, group, claims, stop, result)
            else:
                self._follow(stage, group)
        finally:
            stage.close()
            group.close()
        return result

    def _lead(self, stage, spec, group, claims, stop, result) -> None:
        out_of_step = False  # a failed item left the followers inside its collectives
        max_attempts = self.cfg.cluster.max_attempts
        setup = LazySetup(stage)

        def before(item: str):
            def start() -> None:
                # announce first: a split model's loading is collective, and the followers load
                # theirs when the first item reaches them
                group.announce(item)
                setup()

            return start

        try:
            for item in spec.items:
                if stop.is_set():
                    result.stopped_early = True
                    break
                if item_state(stage, item, max_attempts) != "todo" or not claim(claims, item):
                    result.skipped.append(item)
                    continue
                record = run_item(stage, item, max_attempts, before=before(item))
                if record is None:  # finished or taken by another launch meanwhile
                    result.skipped.append(item)
                else:
                    (result.ran if record.done else result.failed).append(item)
                if record is not None and not record.done and group.group is not None:
                    out_of_step = True
                    # the followers may still be inside the item's collectives: announcing the next
                    # item would meet them out of step, so the shard ends (srun ends every rank with
                    # it) and a resume or requeue retries the item
                    raise ReplicaOutOfStep(
                        f"{spec.stage} {item} failed on the leader of a {group.replica_size}-rank replica; "
                        "ending the shard so its ranks stop together"
                    )
        finally:
            if not out_of_step:  # followers stop waiting, also when the leader could not start
                group.announce(None)

    def _follow(self, stage, group) -> None:
        """Ranks other than a replica's leader: run its items again with it (their share of the
        split model's forward), writing nothing."""
        set_up = False
        while (item := group.receive()) is not None:
            if not set_up:
                stage.setup()
                set_up = True
            stage.follow(item)
