"""Process groups of a job's replicas: every ``replica_size`` consecutive ranks hold one model
copy, laid out on a DeviceMesh whose first dim is "replica"."""

from __future__ import annotations

from typing import Any


def replica_group(mesh) -> tuple[Any, list[int]]:
    """(process group, global ranks) of this rank's replica; every rank makes every replica's
    group, as ``new_group`` wants (call it on all ranks, in the same order)."""
    import torch.distributed as dist

    me = dist.get_rank()
    mine: tuple[Any, list[int]] | None = None
    for row in mesh.mesh:
        ranks = row.flatten().tolist()
        group = dist.new_group(ranks)
        if me in ranks:
            mine = (group, ranks)
    if mine is None:  # pragma: no cover - a mesh always covers every rank
        raise RuntimeError(f"rank {me} is in no replica of the mesh")
    return mine
