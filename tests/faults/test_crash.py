"""kill -9 of a local run at random points, and SIGTERM / SIGUSR2 to it: a rerun of the same
command completes the run, every item done exactly once, nothing corrupt counted as done."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from tests.faults.audit import audit
from tests.faults.conftest import events, finish_run, kill_group, only_run, run_dir_of, start_run, wait_until

pytestmark = pytest.mark.slow
ITEMS_DONE = 3 * 5 + 2  # three items through five per-item stages, then evaluate and report


def test_kill9_at_random_points_then_rerun_does_every_item_once(chain_args, tmp_path):
    rng = random.Random(20261204)
    run_root = tmp_path / "runs"
    killed = 0
    for _ in range(3):
        proc = start_run(chain_args)
        target = len(events(run_root)) + rng.randint(1, 12)  # a random point in the stages' work
        wait_until(
            lambda proc=proc, target=target: proc.poll() is not None or len(events(run_root)) >= target,
            300,
            "the run to progress",
            interval=0.05,
        )
        time.sleep(rng.uniform(0.0, 0.3))  # anywhere inside the item, not only at its start
        if proc.poll() is None:
            kill_group(proc, signal.SIGKILL)
            killed += 1
        proc.wait()
    assert killed >= 2
    res = finish_run(chain_args)
    assert res.returncode == 0, res.stderr[-2000:]
    result = audit(run_dir_of(res.stdout))
    assert result.clean, result
    assert result.done == ITEMS_DONE


@pytest.mark.parametrize(
    "sig, workers, group", [(signal.SIGTERM, 1, False), (signal.SIGUSR2, 2, False), (signal.SIGTERM, 2, True)]
)
def test_signal_finishes_the_item_in_progress_and_rerun_completes(chain_args, tmp_path, sig, workers, group):
    """To the launcher alone (``kill PID``) or to its whole process group (a terminal, a scheduler):
    the workers finish their items too."""
    args = [*chain_args, f"cluster.workers={workers}"]
    proc = start_run(args)
    run_root = tmp_path / "runs"
    wait_for_sample_start(run_root)
    (kill_group if group else lambda p, s: os.kill(p.pid, s))(proc, sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + sig, err[-2000:]
    lines = err.strip().splitlines()
    assert lines[-1].startswith(f"interrupted: {signal.Signals(sig).name}: stopped after the item in progress"), err
    assert "Traceback" not in err, err
    run = only_run(run_root)
    sample = [e for e in events(run_root) if e["stage"] == "sample"]
    started = {(e["item"], e["attempt"]) for e in sample if e["event"] == "start"}
    ended = {(e["item"], e["attempt"]) for e in sample if e["event"] in ("done", "failed")}
    assert started and started == ended, "an item in progress was abandoned"
    assert not (run / "report" / "items").exists()  # it did stop early
    res = finish_run(args)
    assert res.returncode == 0, res.stderr[-2000:]
    result = audit(run)
    assert result.clean and result.done == ITEMS_DONE, result


def test_signal_stops_a_multirun_sweep(chain_args, tmp_path):
    proc = start_run(["-m", *chain_args, "search.n=1,2,3"])
    run_root = tmp_path / "runs"
    wait_for_sample_start(run_root)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("interrupted: SIGTERM"), err
    assert "Error executing job" not in err
    assert len([p for p in run_root.glob("demo/*") if (p / "run.json").exists()]) == 1  # later points never began


def wait_for_sample_start(run_root) -> None:
    """Until a sample item has started: the signal then lands in the middle of real work."""
    wait_until(
        lambda: any(e["stage"] == "sample" and e["event"] == "start" for e in events(run_root)),
        300,
        "a sample item to start",
        interval=0.05,
    )


def test_search_killed_mid_item_resumes_redoing_only_that_item(chain_args, tmp_path):
    """Guidance (the reward inside sampling) killed -9 inside a sample item: the rerun redoes that
    item alone; the items sampled before keep their one attempt."""
    args = [*chain_args, "search=guidance", "search.frequency=1", "search.scale=0.05"]
    run_root = tmp_path / "runs"
    proc = start_run(args)

    def second_item_started():
        started = [e for e in events(run_root) if e["stage"] == "sample" and e["event"] == "start"]
        return proc.poll() is not None or len(started) >= 2

    wait_until(second_item_started, 300, "the second sample item to start", interval=0.05)
    time.sleep(0.5)  # inside the guided generation of that item
    assert proc.poll() is None, "the run ended before it could be killed"
    kill_group(proc, signal.SIGKILL)
    proc.wait()
    sampled = {e["item"] for e in events(run_root) if e["stage"] == "sample" and e["event"] == "done"}
    res = finish_run(args)
    assert res.returncode == 0, res.stderr[-2000:]
    result = audit(run_dir_of(res.stdout))
    assert result.clean and result.done == ITEMS_DONE, result
    starts = {}
    for e in events(run_root):
        if e["stage"] == "sample" and e["event"] == "start":
            starts[e["item"]] = starts.get(e["item"], 0) + 1
    assert sampled and all(starts[item] == 1 for item in sampled)  # finished before the kill: not redone
    assert sorted(n for item, n in starts.items() if item not in sampled) == [1, 2]  # the killed one twice
