"""Multi-rank replicas on this machine, torchrun's way: each shard of a stage is one replica of
``replica_size`` processes, one per rank (GPU), that find each other through the environment
torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT: a rendezvous port per
replica), and run the same shard code as a SLURM job (``launchers.shard``). ``cluster.workers``
replicas run at once. A rank that dies takes its replica down (as srun's ``--kill-on-bad-exit``):
the others would wait in its collectives forever; the item it was on is retried by the next run.
"""

from __future__ import annotations

import os
import queue
import socket
import time
from typing import TYPE_CHECKING, Any

from launchers.local import StageSummary, count_skipped, start_summary
from launchers.signals import signals_blocked, worker_setup, worker_stop
from pipeline.runner import item_state

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.stages.base import Stage
    from pipeline.store import RunStore


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(job, spec, env: dict[str, str], stop, results) -> None:
    os.environ.update(env)
    worker_setup(stop)
    results.put(job.run_shard(spec, worker_stop()))


def run_stage_in_replicas(stage: Stage, cfg: Config, store: RunStore, size: int, stop: Any = None) -> StageSummary:
    """A per-item stage over ``cfg.cluster.workers`` replicas of ``size`` ranks each."""
    import multiprocessing

    from launchers.shard import ShardJob, ShardSpec
    from launchers.sharding import balanced_shards

    started = time.time()
    todo, summary = start_summary(stage, cfg.cluster.max_attempts)
    ctx = multiprocessing.get_context("spawn")  # forking a process that loaded torch can deadlock
    stop = stop if stop is not None else ctx.Event()
    shards = balanced_shards({i: stage.cost(i) for i in todo}, cfg.cluster.workers)
    job = ShardJob(cfg, str(store.root))
    results: Any = ctx.Queue()
    replicas: list[list[Any]] = []
    if todo and not stop.is_set():
        with signals_blocked():  # the ranks start with the signals blocked until their handler is set
            for s in shards:
                spec = ShardSpec(stage.name, s.index, s.items, s.cost)
                port = str(free_port())
                ranks = []
                for r in range(size):
                    env = {
                        "RANK": str(r),
                        "WORLD_SIZE": str(size),
                        "LOCAL_RANK": str(s.index * size + r),  # replicas side by side on the GPUs
                        "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": port,
                    }
                    proc = ctx.Process(target=_rank_main, args=(job, spec, env, stop, results))
                    proc.start()
                    ranks.append(proc)
                replicas.append(ranks)
    while any(p.is_alive() for ranks in replicas for p in ranks):
        for ranks in replicas:
            if any(p.exitcode not in (None, 0) for p in ranks):
                for p in ranks:
                    if p.is_alive():
                        p.terminate()
        try:
            results.get(timeout=0.2)  # drained, so a rank never blocks on exit; the records tell
        except queue.Empty:
            pass
    for item in todo:  # what happened, from the records (a replica that died reports nothing)
        state = item_state(stage, item, cfg.cluster.max_attempts)
        record = store.read(stage.name, item)
        if state == "done":
            summary.ran += 1
        elif record is not None and not record.done and record.error:
            summary.failed += 1
            summary.errors.append((item, record.error.splitlines()[0]))
        else:
            count_skipped(summary, item, state)
    summary.seconds = time.time() - started
    return summary
