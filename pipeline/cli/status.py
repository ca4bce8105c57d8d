"""``python -m pipeline status run=DIR``: per stage and per shard, what is done, running, failed
or pending, with failure reasons and log paths; SLURM states from squeue/sacct."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING

from pipeline.cli.command import compose_command, exit_status, wants_help


@dataclass
class StatusCommand:
    run: str = MISSING  # the run folder


def item_states(stage, max_attempts: int, running_jobs: set[str]) -> dict[str, str]:
    """done | failed (budget left) | exhausted | running | pending | blocked, per item: the
    runner's states, with todo told apart by what the attempt log and record say."""
    from pipeline.runner import item_state

    states = {}
    for item in stage.items():
        state = item_state(stage, item, max_attempts)
        if state == "todo":
            rec = stage.store.read(stage.name, item)
            attempts = stage.store.attempts(stage.name, item)
            live = attempts and attempts[-1]["event"] == "start" and attempts[-1].get("job") in running_jobs
            state = "running" if live else ("failed" if rec is not None and rec.status == "failed" else "pending")
        states[item] = state
    return states


def last_error_line(log: Path) -> str:
    """The exception line at the end of a shard's stderr (why a whole shard died)."""
    try:
        lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return f"(no log at {log})"
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line.strip()[:300]
    return lines[-1].strip()[:300] if lines else "(empty log)"


def render(run_dir: Path) -> str:
    from launchers.slurm import read_submissions
    from launchers.slurm_state import job_states, state_of
    from pipeline.config import load_run_config
    from pipeline.items import Manifest
    from pipeline.stages import build_stage
    from pipeline.store import RunStore

    _, cfg = load_run_config(run_dir)
    store = RunStore(run_dir)
    manifest = Manifest.load(store)
    submissions = read_submissions(run_dir, cfg.cluster.folder)
    latest = {s["stage"]: s for s in submissions}  # the newest submission of each stage
    jobs = [sh["job"] for s in latest.values() for sh in s["shards"]]
    slurm = job_states(jobs)
    running = {j for j in jobs if state_of(slurm, j) == "RUNNING"}
    order = ("done", "running", "failed", "exhausted", "pending", "blocked")
    lines = [
        f"run: {run_dir}  (experiment {cfg.name}, {len(manifest.items)} items)",
        f"{'stage':<10}" + "".join(f"{k:>10}" for k in order) + "   job",
    ]
    problems = []
    for name in cfg.stages:
        stage = build_stage(name, cfg, store, manifest)
        states = item_states(stage, cfg.cluster.max_attempts, running)
        counts = Counter(states.values())
        sub = latest.get(name)
        job = f"{sub['job_id']}" if sub else "-"
        lines.append(f"{name:<10}" + "".join(f"{counts.get(k, 0):>10}" for k in order) + f"   {job}")
        for shard in sub["shards"] if sub else []:
            done = sum(states.get(i) == "done" for i in shard["items"])
            # a job shared with an earlier point of a sweep logs in that point's run folder
            shared = sub.get("shared_from") if sub else None
            base = Path(shared or run_dir)
            log = base / cfg.cluster.folder / name / shard["job"] / f"{shard['job']}_0_log.err"
            job_state = state_of(slurm, shard["job"])
            lines.append(
                f"  shard {shard['index']:<3} {shard['job']:<12} {job_state:<11}"
                f" {done}/{len(shard['items'])} done   log: {log if shared else log.relative_to(run_dir)}"
            )
            if job_state in ("FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL") and done < len(shard["items"]):
                lines.append(f"      last error: {last_error_line(log)}")
        for item, state in states.items():
            if state in ("failed", "exhausted"):
                rec = store.read(name, item)
                reason = rec.error.splitlines()[0] if rec and rec.error else "?"
                problems.append(
                    f"  {name} {item}: {reason} (attempt {rec.attempt if rec else '?'}/{cfg.cluster.max_attempts}"
                    f"{', no retries left' if state == 'exhausted' else ''}) "
                    f"record: {name}/items/{item}.json"
                )
    if problems:
        lines += ["failures:", *problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv, __doc__):
        return 0
    return exit_status(
        lambda: print(render(Path(compose_command(StatusCommand, argv, "python -m pipeline status run=RUN_DIR").run)))
    )


if __name__ == "__main__":
    sys.exit(main())
