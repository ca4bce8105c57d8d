"""Process groups of a job's replicas: every ``replica_size`` consecutive ranks hold one model
copy, laid out on a DeviceMesh whose first dim is "replica"."""

from __future__ import annotations

from typing import Any

# one group per mesh object (kept alive here, so its id stays its own): the launcher and the
# engine both ask for it, and each group is a communicator
_GROUPS: dict[int, tuple[Any, Any, list[int]]] = {}


def replica_group(mesh) -> tuple[Any, list[int]]:
    """(process group, global ranks) of this rank's replica, made once per mesh (call it on all
    ranks, in the same order). A replica spread over one mesh dim uses that dim's group; otherwise
    every rank makes every replica's group, as ``new_group`` wants."""
    import torch.distributed as dist

    if id(mesh) in _GROUPS:
        _, group, ranks = _GROUPS[id(mesh)]
        return group, ranks
    me = dist.get_rank()
    mine: tuple[Any, list[int]] | None = None
    spread = [name for name in mesh.mesh_dim_names[1:] if mesh[name].size() > 1]
    for row in mesh.mesh:
        ranks = row.flatten().tolist()
        if len(spread) == 1:
            if me in ranks:
                mine = (mesh.get_group(spread[0]), ranks)
            continue
        group = dist.new_group(ranks)
        if me in ranks:
            mine = (group, ranks)
    if mine is None:  # pragma: no cover - a mesh always covers every rank
        raise RuntimeError(f"rank {me} is in no replica of the mesh")
    _GROUPS[id(mesh)] = (mesh, *mine)
    return mine
