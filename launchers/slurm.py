"""Submit a chain of stages to SLURM through submitit and return at once.

At submit time the pending items of every stage are computed from the run store (an item is
pending when it is not done and valid, or when an upstream stage of this submission will make
it); per-item stages become job arrays of cost-balanced shards, aggregating stages single jobs,
chained with ``afterany`` dependencies (a failed item must not cancel the rest of the chain:
downstream items whose inputs are missing are reported as blocked). A shard job of R replicas
gets at least R items unless fewer are pending, so no replica starts idle. A chain is submitted
whole or not at all: when sbatch refuses a stage, the jobs queued for the stages before it are
cancelled. Every submitted chain is appended to ``<run>/launch/submissions.jsonl`` for
``pipeline status`` and ``pipeline resume``.
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import submitit
from submitit.core.utils import FailedJobError

from launchers.shard import ShardJob, ShardSpec
from launchers.sharding import balanced_shards
from pipeline.config import replica_size
from pipeline.errors import PipelineError
from pipeline.files import append_jsonl, read_jsonl
from pipeline.runner import classify, item_state
from pipeline.stages import build_stage
from pipeline.stages.base import ALL

if TYPE_CHECKING:
    from pipeline.config import Config, StageResources
    from pipeline.items import Manifest
    from pipeline.store import RunStore

SUBMISSIONS = "submissions.jsonl"
# The jobs this process submitted for a sweep, by (sweep, stage entry): a later point of the same
# sweep whose stage has the same entry (pipeline.stage_cache) and no other pending items depends on
# them instead of queuing the same work twice.
SWEEP_JOBS: dict[tuple[str, str], dict] = {}


@dataclass
class StagePlan:
    stage: str
    shards: list[ShardSpec] = field(default_factory=list)

    @property
    def items(self) -> list[str]:
        return [i for s in self.shards for i in s.items]


def plan_chain(cfg: Config, store: RunStore, manifest: Manifest) -> list[StagePlan]:
    """Which items each stage of the chain must (re)do, split into shards."""
    plans, upstream_pending = [], False
    pending_items: set[str] = set()
    for name in cfg.stages:
        stage = build_stage(name, cfg, store, manifest)
        res = cfg.cluster.resources[name]
        if stage.aggregate:
            if upstream_pending or item_state(stage, ALL, cfg.cluster.max_attempts) != "done":
                plans.append(StagePlan(name, [ShardSpec(name, 0, [ALL])]))
                upstream_pending = True
            continue
        by_state = classify(stage, cfg.cluster.max_attempts)
        # blocked items whose upstream this submission makes are pending too
        pending = [
            i for i in stage.items() if i in by_state["todo"] or (i in by_state["blocked"] and i in pending_items)
        ]
        pending_items = set(pending)
        upstream_pending = upstream_pending or bool(pending)
        if pending:
            costs = {i: stage.cost(i) for i in pending}
            shards = balanced_shards(costs, res.max_shards, min_items=replicas_per_job(cfg, name))
            plans.append(StagePlan(name, [ShardSpec(name, s.index, s.items, s.cost) for s in shards]))
    return plans


def replicas_per_job(cfg: Config, stage: str) -> int:
    res = cfg.cluster.resources[stage]
    return res.nodes * res.tasks_per_node // replica_size(cfg, stage)


def slurm_mem(mem_gb: float) -> str:
    """``--mem`` wants an integer with a unit: 480 -> "480G", 0.5 -> "512M"."""
    return f"{int(mem_gb)}G" if float(mem_gb).is_integer() else f"{math.ceil(mem_gb * 1024)}M"


def describe_resources(res: StageResources) -> str:
    parts = [f"{res.nodes} node(s) x {res.tasks_per_node} task(s)", f"{res.cpus_per_task} CPU/task"]
    if res.gpus_per_node:
        parts.append(f"{res.gpus_per_node} GPU/node")
    if res.mem_gb:
        parts.append(f"--mem={slurm_mem(res.mem_gb)}")
    parts.append(f"{res.timeout_min} min")
    parts += [
        f"{k}={v}"
        for k, v in (
            ("partition", res.partition),
            ("account", res.account),
            ("qos", res.qos),
            ("constraint", res.constraint),
        )
        if v
    ]
    return ", ".join(parts)


def executor_for(cfg: Config, store: RunStore, stage: str, dependency: str | None):
    res: StageResources = cfg.cluster.resources[stage]
    folder = store.root / cfg.cluster.folder / stage / "%j"
    ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=cfg.cluster.max_requeues)
    params = dict(
        job_name=f"{cfg.name}-{stage}",
        time=res.timeout_min,
        nodes=res.nodes,
        ntasks_per_node=res.tasks_per_node,
        cpus_per_task=res.cpus_per_task,
        signal_delay_s=cfg.cluster.signal_delay_s,
        array_parallelism=cfg.cluster.array_parallelism,
        # Thread pools sized to the allocation: ranks sharing a node must not oversubscribe it.
        setup=["export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}", *res.setup],
        additional_parameters=dict(res.additional_parameters),
    )
    if replica_size(cfg, stage) > 1:  # a rank that exits ends its step: a replica's ranks never wait on a dead one
        params["srun_args"] = ["--kill-on-bad-exit=1"]
    optional = {
        "gpus_per_node": res.gpus_per_node or None,
        "mem": slurm_mem(res.mem_gb) if res.mem_gb else None,
        "partition": res.partition,
        "account": res.account,
        "qos": res.qos,
        "constraint": res.constraint,
        "dependency": dependency,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    ex.update_parameters(**params)
    return ex


def submit_chain(cfg: Config, store: RunStore, manifest: Manifest) -> list[dict]:
    """Submit every stage with pending work; returns one record per submitted stage.

    All or nothing: when a stage cannot be submitted (sbatch refuses it, or anything else goes
    wrong on the way), the jobs already queued for the stages before it are cancelled and nothing
    is recorded, so the run folder is as before the command."""
    missing = [cmd for cmd in ("sbatch", "scancel", "srun") if shutil.which(cmd) is None]
    if missing:
        raise PipelineError(
            f"cluster.name=slurm: {', '.join(missing)} not found on this machine; submit from a "
            "SLURM login node, or run here with cluster=local"
        )
    plans = plan_chain(cfg, store, manifest)
    job_fn = ShardJob(cfg, str(store.root), grace_s=max(10.0, cfg.cluster.signal_delay_s - 30))
    submitted: list[dict] = []  # by this chain: cancelled if a later stage is refused
    shared: list[dict] = []  # by an earlier point of the sweep
    previous = None
    for plan in plans:
        res = cfg.cluster.resources[plan.stage]
        # shared only while this chain submitted nothing of its own: a stage after one submitted
        # anew must wait on that job, not on the earlier point's
        earlier = sweep_job(cfg, store, plan) if not submitted else None
        if earlier is not None:
            shared.append({**earlier, "time": time.time(), "shared_from": earlier["run"]})
            previous = earlier["job_id"]
            continue
        try:
            ex = executor_for(cfg, store, plan.stage, f"afterany:{previous}" if previous else None)
            with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes sbatch's stderr
                jobs = ex.map_array(job_fn, plan.shards)
        except BaseException as exc:
            undone = cancel(submitted)
            if isinstance(exc, FailedJobError):
                raise SubmissionRefused(plan.stage, res, str(exc), undone) from None
            if isinstance(exc, Exception):
                raise PipelineError(
                    f"submitting stage {plan.stage} failed ({type(exc).__name__}: {' '.join(str(exc).split())}){undone}"
                ) from exc
            raise
        master = jobs[0].job_id.split("_")[0]
        submitted.append(
            {
                "stage": plan.stage,
                "job_id": master,
                "time": time.time(),
                "folder": str(Path(cfg.cluster.folder) / plan.stage),
                "dependency": previous,
                "resources": asdict(res),
                "replicas": replicas_per_job(cfg, plan.stage),
                "shards": [
                    {"index": s.index, "job": j.job_id, "items": s.items, "cost": s.cost}
                    for s, j in zip(plan.shards, jobs)
                ],
            }
        )
        previous = master
    try:
        for entry in sorted(submitted + shared, key=lambda e: cfg.stages.index(e["stage"])):
            append_jsonl(store.root / cfg.cluster.folder / SUBMISSIONS, {k: v for k, v in entry.items() if k != "run"})
    except BaseException:
        cancel(submitted)  # jobs nobody could see in status or resume must not run
        raise
    if cfg.sweep is not None:
        for entry in submitted:
            SWEEP_JOBS[(cfg.sweep, str((store.root / entry["stage"]).resolve()))] = {**entry, "run": str(store.root)}
    return sorted(submitted + shared, key=lambda e: cfg.stages.index(e["stage"]))


def sweep_job(cfg: Config, store: RunStore, plan: StagePlan) -> dict | None:
    """The job an earlier point of this sweep submitted for the same stage entry, when it covers
    every item this plan would submit and the scheduler still holds it."""
    from launchers.guard import LIVE_STATES
    from launchers.slurm_state import job_states, state_of

    if cfg.sweep is None:
        return None
    earlier = SWEEP_JOBS.get((cfg.sweep, str((store.root / plan.stage).resolve())))
    if earlier is None:
        return None
    covered = {i for shard in earlier["shards"] for i in shard["items"]}
    if not set(plan.items) <= covered:
        return None
    jobs = [shard["job"] for shard in earlier["shards"]]
    states = job_states(jobs)
    if not any(state_of(states, j) in LIVE_STATES for j in jobs):
        return None  # it ran: what it left undone is this plan's to submit
    return earlier


class SubmissionRefused(PipelineError):
    def __init__(self, stage: str, res: StageResources, sbatch_error: str, undone: str):
        said = " ".join(line.strip() for line in sbatch_error.splitlines() if line.strip()) or "no message"
        super().__init__(
            f"sbatch refused stage {stage} ({describe_resources(res)}): {said}{undone}; nothing "
            f"was submitted: change cluster.resources.{stage} and run the same command again"
        )


def cancel(submitted: list[dict]) -> str:
    """Cancel the jobs of stages already submitted; what to tell the user about them."""
    if not submitted:
        return ""
    ids = [e["job_id"] for e in submitted]
    stages = ", ".join(e["stage"] for e in submitted)
    try:
        res = subprocess.run(["scancel", *ids], capture_output=True, text=True, timeout=60)
        failed = res.returncode != 0
        why = res.stderr.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        failed, why = True, str(exc)
    if failed:
        return (
            f"; the jobs already queued for {stages} ({', '.join(ids)}) could not be cancelled ({why}): "
            f"scancel {' '.join(ids)}"
        )
    return f"; cancelled the jobs already queued for {stages} ({', '.join(ids)})"


@dataclass
class Submitted:
    """The jobs of a submitted chain; it prints the run folder and a line per stage."""

    run_dir: Path
    entries: list[dict]
    ok: bool = True  # submitted is all a submission can be: the jobs report in status

    def report(self) -> str:
        return format_submissions(self.run_dir, self.entries)


def submit_to_slurm(cfg: Config, store: RunStore, manifest: Manifest) -> Submitted:
    """Check what the chain needs, then submit it (the launcher registered as ``slurm``)."""
    from launchers.local import preflight

    stages = [build_stage(name, cfg, store, manifest) for name in cfg.stages]
    preflight(stages, cfg.cluster.max_attempts)
    return Submitted(store.root, submit_chain(cfg, store, manifest))


def read_submissions(run_dir: Path, folder: str = "launch") -> list[dict]:
    return read_jsonl(Path(run_dir) / folder / SUBMISSIONS)


def format_submissions(run_dir: Path, submitted: list[dict]) -> str:
    """What ``run`` and ``resume`` print after submitting: the run folder and one line per stage
    with its shards, the replicas of each shard job and the items per shard."""
    lines = [f"run: {run_dir}"]
    for e in submitted:
        counts = sorted(len(sh["items"]) for sh in e["shards"])
        per = str(counts[0]) if counts[0] == counts[-1] else f"{counts[0]}-{counts[-1]}"
        shared = f", shared with the sweep's run {e['shared_from']}" if e.get("shared_from") else ""
        lines.append(
            f"{e['stage']}: job {e['job_id']} ({len(e['shards'])} shard(s) x {e.get('replicas', 1)} "
            f"replica(s), {per} item(s) per shard{shared})"
        )
    if not submitted:
        lines.append("nothing to do: every stage is done")
    return "\n".join(lines)
