"""Run a chain of stages in this process.

For each stage: find the items whose record is missing, failed, stale (built from other upstream
outputs) or invalid; load the stage's models only if there is any; run them one by one, each under
its item lock, recording failures without stopping the other items. Items whose upstream is not
done are "blocked". The command that calls a launcher holds the run folder (``launchers.guard``).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from launchers.claim import LazySetup, run_item
from launchers.signals import StopOnSignal, signals_blocked, worker_setup, worker_stop
from pipeline.config import replica_size
from pipeline.errors import Interrupted, StageError
from pipeline.runner import classify, item_state
from pipeline.stages import build_stage

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.items import Manifest
    from pipeline.stages.base import Stage
    from pipeline.store import RunStore

log = logging.getLogger("pipeline")


@dataclass
class StageSummary:
    name: str
    total: int = 0
    reused: int = 0  # already done and valid: no work
    ran: int = 0
    failed: int = 0
    blocked: int = 0  # upstream not done
    busy: int = 0  # being worked on by another process when this one came to it
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (item, first line of the error)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.blocked == 0 and self.busy == 0


BUSY = "being worked on by another process"


def start_summary(stage: Stage, max_attempts: int) -> tuple[list[str], StageSummary]:
    """The items that need work, and a summary that counts the others (done, blocked, exhausted)."""
    by_state = classify(stage, max_attempts)
    todo = by_state["todo"]
    summary = StageSummary(
        stage.name,
        total=sum(len(items) for items in by_state.values()),
        reused=len(by_state["done"]),
        blocked=len(by_state["blocked"]),
        failed=len(by_state["exhausted"]),
    )
    return todo, summary


def run_stage(stage: Stage, progress: bool = True, max_attempts: int = 3, stop: Any = None) -> StageSummary:
    """``stop``: an event (threading or multiprocessing) checked before each item."""
    from tqdm import tqdm

    started = time.time()
    todo, summary = start_summary(stage, max_attempts)
    setup = LazySetup(stage)
    try:
        for item in tqdm(todo, desc=f"{stage.name:>8}", unit="item", disable=not progress, leave=False):
            if stop is not None and stop.is_set():
                break
            record = run_item(stage, item, max_attempts, before=setup)
            if record is None:
                count_skipped(summary, item, item_state(stage, item, max_attempts))
            elif record.done:
                summary.ran += 1
            else:
                summary.failed += 1
                first = record.error.splitlines()[0] if record.error else "failed"
                summary.errors.append((item, first))
                log.error("%s %s failed (attempt %d): %s", stage.name, item, record.attempt, first)
    finally:
        setup.close()
    summary.seconds = time.time() - started
    return summary


def run_stage_in_pool(stage: Stage, cfg: Config, store: RunStore, stop: Any = None) -> StageSummary:
    """Per-item stage split into cfg.cluster.workers shards, each in its own process (each loads
    its models once), the same shard code that runs in a SLURM job."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from launchers.shard import ShardJob, ShardSpec
    from launchers.sharding import balanced_shards

    started = time.time()
    todo, summary = start_summary(stage, cfg.cluster.max_attempts)
    shards = balanced_shards({i: stage.cost(i) for i in todo}, cfg.cluster.workers)
    job = ShardJob(cfg, str(store.root))
    ctx = multiprocessing.get_context("spawn")  # forking a process that loaded torch can deadlock
    specs = [ShardSpec(stage.name, s.index, s.items, s.cost) for s in shards]
    stop = stop if stop is not None else multiprocessing.get_context("spawn").Event()
    results = []
    if not stop.is_set():
        with signals_blocked():  # the workers start with the signals blocked until their handler is set
            pool = ProcessPoolExecutor(
                max_workers=max(1, len(shards)), mp_context=ctx, initializer=worker_setup, initargs=(stop,)
            )
            futures = [pool.submit(run_shard_in_worker, job, spec) for spec in specs]
        with pool:
            for future in futures:
                try:
                    results.append(future.result())
                except BrokenProcessPool:
                    raise StageError(f"{stage.name}: a worker process died; see {store.root}/logs/run.log") from None
    for res in results:
        summary.ran += len(res.ran)
        summary.failed += len(res.failed)
        for item in res.failed:
            err = store.require(stage.name, item).error
            summary.errors.append((item, err.splitlines()[0] if err else "failed"))
        for item in res.skipped:
            count_skipped(summary, item, item_state(stage, item, cfg.cluster.max_attempts))
    summary.seconds = time.time() - started
    return summary


def count_skipped(summary: StageSummary, item: str, state: str) -> None:
    """An item this launch found taken or settled by another process, counted by its state now."""
    if state == "done":
        summary.reused += 1
    elif state == "blocked":
        summary.blocked += 1
    elif state == "exhausted":
        summary.failed += 1
    else:
        summary.busy += 1
        summary.errors.append((item, BUSY))


def run_shard_in_worker(job, spec):
    return job.run_shard(spec, worker_stop())


def preflight(stages: Sequence[Stage], max_attempts: int) -> None:
    """Cheap checks (checkpoints present, ...) for stages with work, before any stage runs."""
    for stage in stages:
        if any(item_state(stage, i, max_attempts) != "done" for i in stage.items()):
            stage.preflight()


@dataclass
class ChainOutcome:
    """What a local launch did, per stage; it prints the per-stage table and the run's summary."""

    summaries: list[StageSummary]
    store: RunStore

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.summaries)

    def report(self) -> str:
        from pipeline.summary import summary_text

        text = summary_text(self.store) if any(s.name == "report" for s in self.summaries) else None
        return format_summaries(self.summaries) + "\n" + (text.rstrip("\n") if text else f"run: {self.store.root}")


def run_chain(cfg: Config, store: RunStore, manifest: Manifest) -> ChainOutcome:
    """Every stage of ``cfg.stages`` in this process (or ``cluster.workers`` processes, or that many
    replicas of the generator's ranks, ``launchers.local_replicas``);
    SIGTERM/SIGUSR2 stop it after the item in progress (raises Interrupted)."""
    with StopOnSignal() as stop:
        stages = [build_stage(name, cfg, store, manifest) for name in cfg.stages]
        preflight(stages, cfg.cluster.max_attempts)
        summaries = []
        for stage in stages:
            if stop.event.is_set():
                break
            size = replica_size(cfg, stage.name)
            if size > 1 and not stage.aggregate:
                from launchers.local_replicas import run_stage_in_replicas

                summary = run_stage_in_replicas(stage, cfg, store, size, stop=stop.event)
            elif cfg.cluster.workers > 1 and not stage.aggregate:
                summary = run_stage_in_pool(stage, cfg, store, stop=stop.event)
            else:
                summary = run_stage(
                    stage, progress=cfg.tracking.progress, max_attempts=cfg.cluster.max_attempts, stop=stop.event
                )
            summaries.append(summary)
            log.info(
                "%s: %d ran, %d reused, %d failed, %d blocked in %.1fs",
                summary.name,
                summary.ran,
                summary.reused,
                summary.failed,
                summary.blocked,
                summary.seconds,
            )
        if stop.event.is_set():
            done = sum(s.ran for s in summaries)
            raise Interrupted(
                stop.signum or signal.SIGTERM,
                f"{stop.name}: stopped after the item in progress ({done} item(s) "
                f"finished in this launch); run the same command again to continue: {store.root}",
            )
    return ChainOutcome(summaries, store)


def format_summaries(summaries: list[StageSummary]) -> str:
    head = f"{'stage':<9}{'items':>6}{'ran':>6}{'reused':>8}{'failed':>8}{'blocked':>9}{'seconds':>9}"
    lines = [head]
    for s in summaries:
        lines.append(f"{s.name:<9}{s.total:>6}{s.ran:>6}{s.reused:>8}{s.failed:>8}{s.blocked:>9}{s.seconds:>9.1f}")
        lines += [f"    {item}: {err}" for item, err in s.errors[:5]]
        if len(s.errors) > 5:
            lines.append(f"    ... and {len(s.errors) - 5} more (see {s.name}/items/*.json)")
    return "\n".join(lines)
