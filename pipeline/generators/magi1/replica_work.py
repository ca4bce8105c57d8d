"""Work a replica's ranks do once instead of each: the ranks of one model copy (``cfg x sp x tp``
of a ``parallelize.Layout``) all need the caption embedding and the decoded frames, but the T5
encoder runs on the replica's first rank only (the others never load it) and the VAE's tiles are
dealt round-robin over the ranks; the results are broadcast, so every rank holds the same values
a single process computes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from pipeline.distributed import replica_group


class ReplicaWork:
    """The process group of this rank's replica, and the exchanges over it."""

    def __init__(self, mesh) -> None:
        import torch.distributed as dist

        self.group, self.ranks = replica_group(mesh)
        self.size = len(self.ranks)
        self.rank = self.ranks.index(dist.get_rank())

    @property
    def is_first(self) -> bool:
        return self.rank == 0

    def from_first(self, value: Any) -> Any:
        """``value`` of the replica's first rank, on every rank (tensors come back on the CPU)."""
        import torch.distributed as dist

        box = [value if self.is_first else None]
        dist.broadcast_object_list(box, src=self.ranks[0], group=self.group)
        return box[0]

    def owns(self, index: int) -> bool:
        return index % self.size == self.rank

    def pieces(self, count: int, make: Callable[[int], torch.Tensor]) -> list[torch.Tensor]:
        """``[make(0), ..., make(count - 1)]`` on every rank, each made by rank ``index % size``."""
        import torch.distributed as dist

        mine = {k: make(k).contiguous() for k in range(count) if self.owns(k)}
        meta: list[Any] = [None] * self.size
        dist.all_gather_object(meta, {k: (tuple(t.shape), t.dtype) for k, t in mine.items()}, group=self.group)
        like = next(iter(mine.values())) if mine else None
        out = []
        for k in range(count):
            shape, dtype = meta[k % self.size][k]
            buf = mine[k] if k in mine else torch.empty(shape, dtype=dtype, device=_device(like))
            dist.broadcast(buf, src=self.ranks[k % self.size], group=self.group)
            out.append(buf)
        return out


def _device(like: torch.Tensor | None) -> torch.device:
    if like is not None:
        return like.device
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
