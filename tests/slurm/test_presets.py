"""Every shipped cluster preset, submitted unchanged to the local cluster (which advertises their
hardware: 64 CPUs, 1 TiB, 8 GPUs), runs the demo chain to the end; a stage sbatch refuses leaves
nothing queued; a second launch on a folder whose jobs are live stops before any work."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.slurm.conftest import queue_empty, wait_until
from tests.slurm.test_launcher import ROOT, cli, submitted

pytestmark = pytest.mark.slow
PRESETS = sorted(
    p.stem for p in (ROOT / "conf" / "cluster").glob("*.yaml") if yaml.safe_load(p.read_text()).get("name") == "slurm"
)


def test_the_presets_are_found():
    assert PRESETS == ["slurm", "slurm_local"]


def launch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "run", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def demo_args(slurm_cluster, one_scenario):
    return one_scenario


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_submits_unchanged_and_the_demo_completes(demo_args, preset):
    out = cli("run", *demo_args, f"cluster={preset}").stdout
    run, jobs = submitted(out)
    wait_until(lambda: queue_empty(list(jobs.values())), 300, "the chain to finish")
    summary = json.loads((run / "results" / "summary.json").read_text())
    assert summary["items"] == 3
    preset_cfg = yaml.safe_load((ROOT / "conf" / "cluster" / f"{preset}.yaml").read_text())["resources"]["sample"]
    replicas = preset_cfg.get("tasks_per_node", 1)  # the demo's generator: one rank per model copy
    line = re.search(r"^sample: job \d+ \((\d+) shard\(s\) x (\d+) replica\(s\), ([\d-]+) item", out, re.M)
    assert line and int(line.group(2)) == replicas, out
    fewest = int(line.group(3).split("-")[0])
    assert fewest >= min(replicas, 3), out  # a shard fills its replicas unless fewer items remain


def test_refused_stage_cancels_the_chain_and_says_why_in_one_line(demo_args):
    res = launch(
        *demo_args,
        "cluster=slurm",
        "cluster.resources.score.tasks_per_node=16",
        "cluster.resources.score.gpus_per_node=16",
    )
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: sbatch refused stage score (1 node(s) x 16 task(s), 6 CPU/task, 16 GPU/node")
    assert "sbatch: error:" in lines[0] and "cancelled the jobs already queued for prepare, sample" in lines[0]
    cancelled = re.search(r"for prepare, sample \((\d+), (\d+)\)", lines[0]).groups()
    wait_until(lambda: queue_empty(list(cancelled)), 60, "the cancelled jobs to leave the queue")
    run_root = next(a for a in demo_args if a.startswith("run_root=")).split("=", 1)[1]
    run = next(Path(run_root).glob("demo/*"))
    assert not (run / "launch" / "submissions.jsonl").exists()
    assert not list(run.glob("*/items/*.json"))


def test_second_launch_while_jobs_are_live_is_refused(demo_args):
    run, jobs = submitted(cli("run", *demo_args, "cluster=slurm_local").stdout)
    try:
        for again in ([*demo_args, "cluster=slurm_local"], [*demo_args, "cluster=local"]):
            res = launch(*again)
            assert res.returncode == 2, res.stdout + res.stderr
            lines = res.stderr.strip().splitlines()
            assert len(lines) == 1 and "SLURM jobs of an earlier submission still queued or running" in lines[0], lines
        res = subprocess.run(
            [sys.executable, "-m", "pipeline", "resume", f"run={run}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 2 and "still queued or running" in res.stderr
    finally:
        wait_until(lambda: queue_empty(list(jobs.values())), 300, "the chain to finish")
    subs = [json.loads(x) for x in (run / "launch" / "submissions.jsonl").read_text().splitlines()]
    assert len(subs) == 7  # only the first launch submitted
    assert json.loads((run / "results" / "summary.json").read_text())["items"] == 3
