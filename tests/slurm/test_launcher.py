"""The launcher on a real SLURM cluster: sharded chains, a cancelled shard resumed, a failing item,
a forced requeue, and a sharded multirun. One scenario (three items) keeps each chain short."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.video_io import check_video
from tests.slurm.conftest import queue_empty, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def cli(command: str, *args: str) -> subprocess.CompletedProcess:
    res = subprocess.run(
        [sys.executable, "-m", "pipeline", command, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, f"{command} failed:\n{res.stdout}\n{res.stderr[-3000:]}"
    return res


def submitted(out: str) -> tuple[Path, dict[str, str]]:
    run = Path(re.search(r"^run: (.+)$", out, re.M).group(1))
    return run, dict(re.findall(r"^(\w+): job (\d+)", out, re.M))


def attempts(run: Path, stage: str) -> dict[str, list[dict]]:
    return {
        p.stem: [json.loads(x) for x in p.read_text().splitlines()] for p in (run / stage / "attempts").glob("*.jsonl")
    }


@pytest.fixture
def base_args(slurm_cluster, one_scenario):
    return [*one_scenario, "cluster=slurm_local"]


def test_cancelled_shard_is_reported_and_resume_redoes_nothing_finished(base_args):
    # Six candidates per item make an item last long enough to be cancelled in its middle.
    run, jobs = submitted(cli("run", *base_args, "search.n=6").stdout)
    assert set(jobs) == {"prepare", "sample", "score", "select", "conform", "evaluate", "report"}
    subs = [json.loads(x) for x in (run / "launch" / "submissions.jsonl").read_text().splitlines()]
    assert len(next(s for s in subs if s["stage"] == "sample")["shards"]) == 3

    def mid_item():  # a sample shard that started an item moments ago (items take seconds)
        for lines in attempts(run, "sample").values():
            if lines and lines[-1]["event"] == "start" and time.time() - lines[-1]["time"] < 1.0:
                return lines[-1]

    started = wait_until(mid_item, 180, "a sample shard at the start of an item", interval=0.05)
    victim = started["job"]
    # Cancel the shard, and kill its task at once as a dead node would: submitit's task otherwise
    # outlives SIGTERM for KillWait seconds, long enough to finish a tiny item. The cluster runs
    # on this machine, so the task's pid is ours to signal.
    subprocess.run(["scancel", victim], check=True)
    os.kill(started["pid"], signal.SIGKILL)
    wait_until(lambda: queue_empty(list(jobs.values())), 240, "the chain to settle")
    interrupted = [i for i, lines in attempts(run, "sample").items() if lines[-1]["event"] == "start"]
    assert len(interrupted) == 1

    status = cli("status", f"run={run}").stdout
    assert re.search(rf"{victim}\s+CANCELLED", status), status
    assert not (run / "results" / "summary.json").exists()

    resumed = cli("resume", f"run={run}").stdout
    _, new_jobs = submitted(resumed)
    assert "prepare" not in new_jobs and "sample" in new_jobs  # only unfinished work resubmitted
    wait_until(lambda: queue_empty(list(new_jobs.values())), 300, "the resumed chain")

    status = cli("status", f"run={run}").stdout
    for stage in ("prepare", "sample", "score", "select", "conform"):
        assert re.search(rf"^{stage}\s+3\s+0\s+0\s+0\s+0\s+0", status, re.M), status
    assert json.loads((run / "results" / "summary.json").read_text())["items"] == 3
    for video in (run / "conform" / "outputs" / "submission").glob("*.mp4"):
        check_video(video, num_frames=40, fps=8)
    for stage in ("prepare", "sample", "score", "select", "conform"):
        for item, lines in attempts(run, stage).items():
            done = [x for x in lines if x["event"] == "done"]
            assert len(done) == 1, f"{stage} {item} finished {len(done)} times: {lines}"


def test_failing_item_is_reported_and_does_not_block_others(base_args, small_dataset, tmp_path):
    broken = tmp_path / "broken" / small_dataset.name
    shutil.copytree(small_dataset, broken)
    frame = sorted((broken / "switch-frames").glob("0002_*.jpg"))[0]
    frame.write_bytes(b"not a jpeg")
    args = [a for a in base_args if not a.startswith("benchmark.root=")]
    run, jobs = submitted(
        cli("run", *args, f"benchmark.root={broken}", "stages=[prepare,sample]", "cluster.max_attempts=1").stdout
    )
    wait_until(lambda: queue_empty(list(jobs.values())), 240, "the chain to settle")
    status = cli("status", f"run={run}").stdout
    assert re.search(r"^prepare\s+2\s+0\s+0\s+1\s+0\s+0", status, re.M), status
    assert re.search(r"^sample\s+2\s+0\s+0\s+0\s+0\s+1", status, re.M), status
    assert "prepare 0002: " in status and "no retries left" in status and "prepare/items/0002.json" in status


def test_forced_requeue_continues_the_shard(base_args):
    run, jobs = submitted(
        cli("run", *base_args, "stages=[prepare,sample]", "cluster.resources.sample.max_shards=1").stdout
    )

    def second_item_started():
        lines = attempts(run, "sample")
        done = [i for i, x in lines.items() if x[-1]["event"] == "done"]
        running = [i for i, x in lines.items() if x[-1]["event"] == "start"]
        return running[0] if done and running else None

    current = wait_until(second_item_started, 180, "the shard's second item", interval=0.1)
    subprocess.run(["scancel", "--signal=USR2", jobs["sample"]], check=True)
    wait_until(lambda: queue_empty([jobs["sample"]]), 240, "the requeued shard to finish")

    lines = attempts(run, "sample")
    assert sorted(lines) == ["0001", "0002", "0003"]
    assert all([x["event"] for x in v] == ["start", "done"] for v in lines.values()), lines
    assert lines[current][-1]["restart"] == 0  # the item in progress was finished, not redone
    assert any(v[-1]["restart"] == 1 for v in lines.values()), "the shard never restarted"


def test_multirun_submits_one_sharded_run_per_point(base_args):
    out = cli("run", "-m", *base_args, "search.n=1,2", "stages=[prepare,sample]").stdout
    runs = re.findall(r"^run: (.+)$", out, re.M)
    assert len(runs) == 2 and len({Path(r).name for r in runs}) == 2
    all_jobs = re.findall(r"^\w+: job (\d+)", out, re.M)
    try:
        for run in runs:
            subs = [json.loads(x) for x in (Path(run) / "launch" / "submissions.jsonl").read_text().splitlines()]
            assert len(next(s for s in subs if s["stage"] == "sample")["shards"]) == 3
    finally:
        subprocess.run(["scancel", *all_jobs])


def test_sweep_points_share_the_jobs_of_their_common_stages(base_args):
    """Two rewards over one set of videos: the second point depends on the first point's prepare
    and sample jobs instead of queuing its own, and every video is generated once."""
    out = cli("run", "-m", *base_args, "reward.stride=2,4", "sweep=strides").stdout
    (first, first_jobs), (second, second_jobs) = (submitted("run: " + b) for b in out.split("run: ")[1:])
    assert second_jobs["prepare"] == first_jobs["prepare"] and second_jobs["sample"] == first_jobs["sample"]
    assert second_jobs["score"] != first_jobs["score"]
    assert out.count("shared with the sweep's run") == 2
    jobs = sorted(set(first_jobs.values()) | set(second_jobs.values()))
    wait_until(lambda: queue_empty(jobs), 300, "the sweep's jobs")
    for run in (first, second):
        assert (run / "results" / "summary.json").exists()
    assert (first / "sample").resolve() == (second / "sample").resolve()
    starts = [sum(e["event"] == "start" for e in a) for a in attempts(first, "sample").values()]
    assert starts == [1, 1, 1]  # each item generated once
    points = (first.parent.parent / "sweeps" / "strides.jsonl").read_text().splitlines()
    assert [json.loads(p)["run"] for p in points] == [f"demo/{first.name}", f"demo/{second.name}"]


def test_a_two_rank_replica_makes_the_videos_of_one_rank(base_args, tiny_models, tmp_path):
    """Two ranks in one job: as two single-rank replicas claiming items, or as one two-rank replica
    sharing a sequence-parallel MAGI-1 (generator.parallel.sp=2, gloo rendezvous; the follower runs each item with the leader
    and writes nothing). Both make the same videos."""
    from pipeline.video_io import read_video

    res, m = "cluster.resources.sample", tiny_models["magi1"]
    magi = [
        "generator=magi1_tiny",
        f"generator.checkpoint={m}/dit",
        f"generator.vae_checkpoint={m}/vae",
        f"generator.t5_checkpoint={m}/t5",
        f"generator.special_tokens={m}/special_tokens.npz",
    ]
    videos = {}
    for replica_size, layout in ((1, []), (2, ["generator.parallel.sp=2"])):
        args = [a for a in base_args if not a.startswith("run_root=")]
        run, jobs = submitted(
            cli(
                "run",
                *args,
                *magi,
                f"run_root={tmp_path / f'replica{replica_size}'}",
                "stages=[prepare,sample]",
                f"{res}.max_shards=1",
                f"{res}.tasks_per_node=2",
                *layout,
            ).stdout
        )
        wait_until(lambda jobs=jobs: queue_empty(list(jobs.values())), 300, "the shard to finish")
        lines = attempts(run, "sample")
        assert sorted(lines) == ["0001", "0002", "0003"]
        for item, events in lines.items():
            assert [x["event"] for x in events] == ["start", "done"], (item, events)
        ranks = {x["rank"] for events in lines.values() for x in events}
        assert ranks <= ({0, 1} if replica_size == 1 else {0})
        err = next((run / "launch" / "sample").glob("*/*_1_log.err")).read_text()
        assert "Traceback" not in err, err
        if layout:  # the replica's first rank says how the copy is spread; the other says nothing
            logs = [next((run / "launch" / "sample").glob(f"*/*_{r}_log.out")).read_text() for r in (0, 1)]
            assert "2 rank(s) per copy (cfg=1,sp=2,tp=1)" in logs[0] and "per copy" not in logs[1], logs
        videos[replica_size] = {p.relative_to(run): read_video(p)[0] for p in sorted((run / "sample").rglob("*.mp4"))}
    assert sorted(videos[1]) == sorted(videos[2]) and len(videos[1]) == 6
    for name, frames in videos[1].items():  # fp32 sequence parallelism: the same sums in the same order
        assert np.array_equal(frames, videos[2][name]), name
