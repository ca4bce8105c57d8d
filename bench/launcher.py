"""Launcher benchmarks.

(a) On the local SLURM cluster (slurm/local_cluster.sh; skipped without one): time to submit a
    200-shard job array through our launcher's executor, and time from sbatch to the first item
    running.
(b) A simulation of a full sweep, 198 items x 16 candidates with heterogeneous durations on 8
    replicas: makespan of the reference's contiguous chunks vs our schemes vs the ideal
    (total work / replicas), side by side.

    python bench/launcher.py [--shards 200] [--seeds 20]
"""

from __future__ import annotations

import argparse
import heapq
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from launchers.sharding import balanced_shards, contiguous_chunks  # noqa: E402


# ---- (b) simulation ------------------------------------------------------------------------------
def sweep_durations(rng: np.random.Generator, scenarios=66, views=3, candidates=16) -> dict[str, float]:
    """Minutes per item: scenario-level difficulty shared by its views (consecutive ids, as in the
    benchmark), per-candidate noise, and a few stragglers (slow node, retried OOM)."""
    out = {}
    for s in range(scenarios):
        difficulty = rng.lognormal(0.0, 0.5)
        for v in range(views):
            per_candidate = 2.0 * difficulty * rng.lognormal(0.0, 0.15, size=candidates)
            straggle = 3.0 if rng.random() < 0.03 else 1.0
            out[f"{s * views + v + 1:04d}"] = float(per_candidate.sum() * straggle)
    return out


def list_schedule(queue: list[list[str]], durations: dict[str, float], workers: int) -> float:
    """Workers take the next unit (a list of items run in order) as soon as they are free."""
    free = [0.0] * workers
    heapq.heapify(free)
    end = 0.0
    for unit in queue:
        start = heapq.heappop(free)
        finish = start + sum(durations[i] for i in unit)
        end = max(end, finish)
        heapq.heappush(free, finish)
    return end


def simulate(seeds: int, replicas: int = 8) -> list[tuple[str, float]]:
    rows: dict[str, list[float]] = {}
    for seed in range(seeds):
        d = sweep_durations(np.random.default_rng(seed))
        items = list(d)
        estimate = {i: 16 * 40.0 for i in items}  # candidates x frames: what is known at submit time
        ideal = sum(d.values()) / replicas
        schemes = {
            "reference: contiguous chunks, 1 per replica": list_schedule(
                contiguous_chunks(items, replicas), d, replicas
            ),
            "ours: 8 cost-balanced shards, 1 per replica": list_schedule(
                [s.items for s in balanced_shards(estimate, replicas)], d, replicas
            ),
            "ours: 66 shards, array parallelism 8": list_schedule(
                [s.items for s in balanced_shards(estimate, 66)], d, replicas
            ),
            "ours: 1 job, 8 replicas claiming items": list_schedule([[i] for i in items], d, replicas),
            "ideal: total work / replicas": ideal,
        }
        for name, makespan in schemes.items():
            rows.setdefault(name, []).append(makespan / 60.0)
    return [(name, statistics.mean(v)) for name, v in rows.items()]


# ---- (a) local SLURM cluster ------------------------------------------------------------------------
def _probe(path: str) -> str:
    Path(path).write_text(str(time.time()))
    return path


def submit_bench(shards: int) -> list[tuple[str, float]] | str:
    if shutil.which("sbatch") is None or subprocess.run(["scontrol", "ping"], capture_output=True).returncode:
        return "no local SLURM cluster (start one with: sudo slurm/local_cluster.sh start)"
    import submitit

    tmp = Path(tempfile.mkdtemp(prefix="launcher-bench-"))
    ex = submitit.SlurmExecutor(folder=tmp / "%j")
    ex.update_parameters(job_name="bench-submit", time=5, cpus_per_task=1, array_parallelism=shards)
    marks = [str(tmp / f"started_{k}") for k in range(shards)]
    t0 = time.time()
    jobs = ex.map_array(_probe, marks)
    submitted = time.time()
    try:
        while not any(Path(m).exists() for m in marks):
            if time.time() - submitted > 120:
                return "timed out waiting for the first array task"
            time.sleep(0.05)
        first = min(float(Path(m).read_text()) for m in marks if Path(m).exists())
    finally:
        subprocess.run(["scancel", jobs[0].job_id.split("_")[0]], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        (f"submit {shards}-shard array (s)", submitted - t0),
        ("sbatch -> first item running (s)", first - submitted),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shards", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args()

    print("(a) local SLURM cluster")
    res = submit_bench(args.shards)
    if isinstance(res, str):
        print(f"  skipped: {res}")
    else:
        for name, value in res:
            print(f"  {name:<40}{value:>8.2f}")

    print(f"\n(b) 198 items x 16 candidates on 8 replicas, mean of {args.seeds} draws (hours)")
    rows = simulate(args.seeds)
    ideal = rows[-1][1]
    print(f"  {'scheme':<46}{'makespan':>10}{'vs ideal':>10}")
    for name, hours in rows:
        print(f"  {name:<46}{hours:>10.2f}{hours / ideal:>10.2f}")
    ref = rows[0][1]
    best = min(h for n, h in rows if n.startswith("ours"))
    print(f"\n  best of ours vs reference: {ref / best:.2f}x shorter makespan")


if __name__ == "__main__":
    main()
