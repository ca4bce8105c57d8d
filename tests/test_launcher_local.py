"""Launcher pieces that need no cluster: sharding, item claims, shard runs and checkpoints."""

from __future__ import annotations

import threading

import pytest

from launchers.shard import ShardJob, ShardSpec, claim
from launchers.sharding import balanced_shards, contiguous_chunks
from pipeline.config import to_config
from pipeline.items import Manifest
from pipeline.store import RunStore
from tests.conftest import compose


def test_balanced_shards_cover_items_once_and_balance_cost():
    costs = {f"{i:04d}": float(c) for i, c in enumerate([9, 1, 1, 1, 8, 1, 1, 1, 7, 1, 1, 1])}
    shards = balanced_shards(costs, 3)
    assert sorted(i for s in shards for i in s.items) == sorted(costs)
    assert max(s.cost for s in shards) - min(s.cost for s in shards) <= 1.0
    for s in shards:  # item order inside a shard follows the manifest
        assert s.items == sorted(s.items)
    assert len(balanced_shards(costs, 50)) == len(costs)
    assert balanced_shards({}, 4) == []
    chunks = contiguous_chunks(list(costs), 3)
    assert [len(c) for c in chunks] == [4, 4, 4] and max(sum(costs[i] for i in c) for c in chunks) == 12


def test_claims_are_exclusive(tmp_path):
    assert claim(tmp_path / "c", "0001")
    assert not claim(tmp_path / "c", "0001")
    assert claim(tmp_path / "c", "0002")


@pytest.fixture
def prepared_run(demo_overrides):
    cfg = to_config(compose(demo_overrides + ["benchmark.max_scenarios=1", "stages=[prepare]"]))
    store = RunStore.for_config(cfg)
    manifest = Manifest.from_benchmark(cfg)
    manifest.save(store)
    return cfg, store, manifest


def test_shard_runs_its_items_and_skips_finished_ones(prepared_run):
    cfg, store, manifest = prepared_run
    job = ShardJob(cfg, str(store.root))
    spec = ShardSpec("prepare", 0, manifest.ids())
    first = job.run_shard(spec)
    assert first.ran == manifest.ids() and not first.failed
    again = job.run_shard(spec)
    assert again.ran == [] and again.skipped == manifest.ids()
    for item in manifest.ids():
        assert [a["event"] for a in store.attempts("prepare", item)] == ["start", "done"]


def test_checkpoint_stops_after_the_current_item_and_resubmits_the_same_shard(prepared_run, monkeypatch):
    cfg, store, manifest = prepared_run
    from pipeline.stages.prepare import Prepare

    entered, release = threading.Event(), threading.Event()
    original = Prepare.run

    def slow_run(self, item_id):
        entered.set()
        release.wait(30)
        return original(self, item_id)

    monkeypatch.setattr(Prepare, "run", slow_run)
    job = ShardJob(cfg, str(store.root), grace_s=30)
    spec = ShardSpec("prepare", 0, manifest.ids())
    result = {}
    runner = threading.Thread(target=lambda: result.update(r=job(spec)))
    runner.start()
    assert entered.wait(30)
    timer = threading.Timer(0.5, release.set)  # the item finishes while checkpoint waits for it
    timer.start()
    delayed = job.checkpoint(spec)
    runner.join(30)
    assert delayed.args == (spec,) and isinstance(delayed.function, ShardJob)
    res = result["r"]
    assert res.ran == manifest.ids()[:1] and res.stopped_early
    assert store.read("prepare", manifest.ids()[0]).done
    assert store.read("prepare", manifest.ids()[1]) is None


@pytest.mark.slow
def test_local_process_pool_runs_the_chain(demo_overrides):
    from pipeline.cli.run import run

    run_dir = run(compose(demo_overrides + ["benchmark.max_scenarios=1", "cluster.workers=2"]))
    assert "Physics-IQ score: " in (run_dir / "results" / "summary.txt").read_text()
    jobs = {a["pid"] for item in ("0001", "0002", "0003") for a in RunStore(run_dir).attempts("sample", item)}
    assert len(jobs) == 2  # two worker processes shared the three items
