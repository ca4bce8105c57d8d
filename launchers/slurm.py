"""Submit a chain of stages to SLURM through submitit and return at once.

At submit time the pending items of every stage are computed from the run store (an item is
pending when it is not done and valid, or when an upstream stage of this submission will make
it); per-item stages become job arrays of cost-balanced shards, aggregating stages single jobs,
chained with ``afterany`` dependencies (a failed item must not cancel the rest of the chain:
downstream items whose inputs are missing are reported as blocked). Every submission is
appended to ``<run>/launch/submissions.jsonl`` for ``pipeline.status`` and ``pipeline.resume``.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from launchers.shard import ShardJob, ShardSpec
from launchers.sharding import balanced_shards
from pipeline.stages import STAGES
from pipeline.stages.base import ALL
from pipeline.store import append_jsonl, read_jsonl

if TYPE_CHECKING:
    from pipeline.config import Config, StageResources
    from pipeline.items import Manifest
    from pipeline.store import RunStore

SUBMISSIONS = "submissions.jsonl"


@dataclass
class StagePlan:
    stage: str
    shards: list[ShardSpec] = field(default_factory=list)

    @property
    def items(self) -> list[str]:
        return [i for s in self.shards for i in s.items]


def plan_chain(cfg: "Config", store: "RunStore", manifest: "Manifest") -> list[StagePlan]:
    """Which items each stage of the chain must (re)do, split into shards."""
    plans, upstream_pending = [], False
    pending_items: set[str] = set()
    for name in cfg.stages:
        stage = STAGES[name](cfg, store, manifest)
        res = cfg.cluster.resources[name]
        if stage.aggregate:
            if upstream_pending or stage.state(ALL, cfg.cluster.max_attempts) != "done":
                plans.append(StagePlan(name, [ShardSpec(name, 0, [ALL])]))
                upstream_pending = True
            continue
        pending = []
        for item in stage.items():
            state = stage.state(item, cfg.cluster.max_attempts)
            if state == "todo" or (state == "blocked" and item in pending_items):
                pending.append(item)
        pending_items = set(pending)
        upstream_pending = upstream_pending or bool(pending)
        if pending:
            costs = {i: stage.cost(i) for i in pending}
            shards = balanced_shards(costs, res.max_shards)
            plans.append(StagePlan(name, [ShardSpec(name, s.index, s.items, s.cost) for s in shards]))
    return plans


def executor_for(cfg: "Config", store: "RunStore", stage: str, dependency: str | None):
    import submitit

    res: StageResources = cfg.cluster.resources[stage]
    folder = store.root / cfg.cluster.folder / stage / "%j"
    ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=cfg.cluster.max_requeues)
    params = dict(
        job_name=f"{cfg.name}-{stage}", time=res.timeout_min, nodes=res.nodes,
        ntasks_per_node=res.tasks_per_node, cpus_per_task=res.cpus_per_task,
        signal_delay_s=cfg.cluster.signal_delay_s, array_parallelism=cfg.cluster.array_parallelism,
        # Thread pools sized to the allocation: ranks sharing a node must not oversubscribe it.
        setup=["export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}", *res.setup],
        additional_parameters=dict(res.additional_parameters),
    )
    optional = {"gpus_per_node": res.gpus_per_node or None,
                "mem": f"{res.mem_gb}GB" if res.mem_gb else None, "partition": res.partition,
                "account": res.account, "qos": res.qos, "constraint": res.constraint,
                "dependency": dependency}
    params.update({k: v for k, v in optional.items() if v is not None})
    ex.update_parameters(**params)
    return ex


def submit_chain(cfg: "Config", store: "RunStore", manifest: "Manifest") -> list[dict]:
    """Submit every stage with pending work; returns one record per submitted stage."""
    plans = plan_chain(cfg, store, manifest)
    job_fn = ShardJob(cfg, str(store.root), grace_s=max(10.0, cfg.cluster.signal_delay_s - 30))
    submitted, previous = [], None
    for plan in plans:
        ex = executor_for(cfg, store, plan.stage, f"afterany:{previous}" if previous else None)
        jobs = ex.map_array(job_fn, plan.shards)
        master = jobs[0].job_id.split("_")[0]
        entry = {
            "stage": plan.stage, "job_id": master, "time": time.time(),
            "folder": str(Path(cfg.cluster.folder) / plan.stage),
            "dependency": previous,
            "resources": asdict(cfg.cluster.resources[plan.stage]),
            "shards": [{"index": s.index, "job": j.job_id, "items": s.items, "cost": s.cost}
                       for s, j in zip(plan.shards, jobs)],
        }
        append_jsonl(store.root / cfg.cluster.folder / SUBMISSIONS, entry)
        submitted.append(entry)
        previous = master
    return submitted


def read_submissions(run_dir: Path, folder: str = "launch") -> list[dict]:
    return read_jsonl(Path(run_dir) / folder / SUBMISSIONS)


def format_submissions(run_dir: Path, submitted: list[dict]) -> str:
    """What ``run`` and ``resume`` print after submitting: the run folder and one line per stage."""
    lines = [f"run: {run_dir}"]
    lines += [f"{e['stage']}: job {e['job_id']} ({len(e['shards'])} shard(s))" for e in submitted]
    if not submitted:
        lines.append("nothing to do: every stage is done")
    return "\n".join(lines)
