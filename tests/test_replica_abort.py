"""A multi-rank replica whose leader records a failed item ends its shard instead of announcing
the next item to followers that may still be inside the failed one's collectives."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import launchers.shard as shard
from launchers.replica import ReplicaGroup


class Stage:
    name = "sample"

    def setup(self) -> None:
        pass


def lead(monkeypatch, replica_size: int, outcomes: dict[str, bool]):
    announced: list[str | None] = []
    group = ReplicaGroup(0, replica_size, replica_size, group=object() if replica_size > 1 else None)
    monkeypatch.setattr(group, "announce", announced.append)
    monkeypatch.setattr(shard, "item_state", lambda stage, item, attempts: "todo")
    monkeypatch.setattr(shard, "claim", lambda claims, item: True)

    def run_item(stage, item, attempts, before):
        before()
        return SimpleNamespace(done=outcomes[item])

    monkeypatch.setattr(shard, "run_item", run_item)
    job = shard.ShardJob(SimpleNamespace(cluster=SimpleNamespace(max_attempts=1)), "/nonexistent")
    result = shard.ShardResult("sample", 0)
    spec = shard.ShardSpec("sample", 0, list(outcomes))
    return job, spec, group, result, announced


def test_a_failed_item_ends_a_multi_rank_replicas_shard(monkeypatch):
    job, spec, group, result, announced = lead(monkeypatch, 2, {"0001": True, "0002": False, "0003": True})
    with pytest.raises(shard.ReplicaOutOfStep, match="0002 failed on the leader of a 2-rank replica"):
        job._lead(Stage(), spec, group, None, shard.threading.Event(), result)
    assert result.ran == ["0001"] and result.failed == ["0002"]
    assert announced == ["0001", "0002"]  # nothing more: not the next item, not even "stop"


def test_a_single_rank_replica_goes_on_after_a_failed_item(monkeypatch):
    job, spec, group, result, announced = lead(monkeypatch, 1, {"0001": False, "0002": True})
    job._lead(Stage(), spec, group, None, shard.threading.Event(), result)
    assert result.failed == ["0001"] and result.ran == ["0002"]
