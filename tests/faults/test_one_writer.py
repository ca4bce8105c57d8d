"""One writer per run folder: a second launch on a folder in use stops with one line before any
work; two launches started together never work on the same item; an item held by another
process is left to it."""

from __future__ import annotations

import pytest

from launchers.claim import run_item
from launchers.local import run_stage
from pipeline.config import to_config
from pipeline.items import Manifest
from pipeline.stages import build_stage
from pipeline.store import RunStore
from tests.conftest import compose
from tests.faults.audit import audit
from tests.faults.conftest import finish_run, only_run, run_dir_of, start_run

pytestmark = pytest.mark.slow


def test_second_launch_on_a_folder_in_use_is_one_line(chain_args, tmp_path):
    res = finish_run([*chain_args, "stages=[prepare]"])
    assert res.returncode == 0, res.stderr[-2000:]
    store = RunStore(run_dir_of(res.stdout))
    lock = store.writer_lock()
    assert lock.acquire(command="a test holding the folder")
    try:
        res = finish_run(chain_args)
    finally:
        lock.release()
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: run folder {store.root} is being written by pid "), lines
    assert "a test holding the folder" in lines[0]
    assert not (store.root / "sample" / "items").exists()


def test_two_launches_at_once_do_every_item_once(chain_args, tmp_path):
    first, second = start_run(chain_args), start_run(chain_args)
    outcomes = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in (first, second)]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 2], outcomes
    refused = next(err for code, _, err in outcomes if code == 2)
    assert "is being written by pid" in refused.strip().splitlines()[-1]
    result = audit(only_run(tmp_path / "runs"))
    assert result.clean and result.done == 17, result


def test_a_killed_holder_leaves_no_lock_even_with_forked_children(tmp_path):
    """Worker pools fork: their children must not keep the parent's locks alive after kill -9."""
    import os
    import signal
    import subprocess
    import sys

    from pipeline.locks import FileLock
    from tests.conftest import wait_until

    path = tmp_path / "writer.lock"
    code = (
        "import os, sys, time\n"
        "from pipeline.locks import FileLock\n"
        f"assert FileLock(__import__('pathlib').Path({str(path)!r})).acquire()\n"
        "if os.fork() == 0:\n    time.sleep(60)\n    os._exit(0)\n"
        "print('held', flush=True)\ntime.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not FileLock(path).acquire()
        os.kill(holder.pid, signal.SIGKILL)  # the parent only: its forked child lives on
        holder.wait()
        lock = FileLock(path)
        assert wait_until(lambda: lock.acquire(), 10, "the lock to be free", interval=0.05)
        lock.release()
    finally:
        os.killpg(holder.pid, signal.SIGKILL)


def test_an_item_held_elsewhere_is_left_to_its_holder(demo_overrides):
    cfg = to_config(compose([*demo_overrides, "benchmark.max_scenarios=1"]))
    manifest = Manifest.from_benchmark(cfg)
    store = RunStore.for_config(cfg)
    manifest.save(store)
    prepare = build_stage("prepare", cfg, store, manifest)
    held = store.item_lock("prepare", "0002")
    assert held.acquire(command="another shard")
    try:
        assert run_item(prepare, "0002", max_attempts=3) is None
        summary = run_stage(prepare, progress=False)
    finally:
        held.release()
    assert (summary.ran, summary.busy) == (2, 1) and not summary.ok
    assert summary.errors == [("0002", "being worked on by another process")]
    assert store.read("prepare", "0002") is None and store.attempts("prepare", "0002") == []
    assert run_stage(prepare, progress=False).ran == 1  # released: the next launch does it
