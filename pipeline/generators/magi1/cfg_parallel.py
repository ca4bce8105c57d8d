"""CFG parallelism: the passes of a base model's step on separate ranks of the ``cfg`` mesh
dimension, combined exactly as in one process.

A base MAGI-1 step makes three DiT passes (``sampler._cfg_velocity``): text + history, null
caption + history (the only one that writes the KV cache) and every denoised chunk alone. Pass i
runs on cfg rank ``i % cfg``; each result is then broadcast from its rank, so every rank combines
the same three velocities and takes the same Euler step. The KV cache the null pass writes is read
by the text pass on later steps: after a step that writes the slot of a chunk that has just become
clean (the only slot a later step reads before rewriting it), that slot is broadcast from the null
pass's rank over the cfg group, layer by layer. A step recomputed with grad (reward guidance
through the model) runs every pass on every rank instead, so each holds the whole gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class CfgSplit:
    """Which rank of a cfg group runs which pass, and the exchanges between them."""

    def __init__(self, mesh_dim) -> None:
        self.group = mesh_dim.get_group()
        self.size = mesh_dim.size()
        self.rank = mesh_dim.get_local_rank()

    def owner(self, index: int) -> int:
        return index % self.size

    def runs(self, index: int) -> bool:
        return self.owner(index) == self.rank

    def _src(self, index: int) -> int:
        import torch.distributed as dist

        return dist.get_global_rank(self.group, self.owner(index))

    def share(self, outputs: Sequence[torch.Tensor | None], shapes: Sequence[tuple[int, ...]], device) -> list:
        """Every pass's output on every rank: ``outputs[i]`` is this rank's result of pass i (None
        where another rank ran it), ``shapes[i]`` its shape (float32). Not differentiable: a step
        with grad runs every pass on every rank (``sampler._cfg_velocity``)."""
        import torch.distributed as dist

        out = []
        for i, (mine, shape) in enumerate(zip(outputs, shapes)):
            buf = mine.contiguous() if mine is not None else torch.empty(shape, dtype=torch.float32, device=device)
            dist.broadcast(buf, self._src(i), group=self.group)
            out.append(buf)
        return out

    def share_cache(self, cache, start: int, end: int, writer: int, device) -> None:
        """Tokens ``[start, end)`` of every layer's K/V from the rank that ran pass ``writer``."""
        import torch.distributed as dist

        src = self._src(writer)
        groups = torch.tensor([cache.num_groups or 0], dtype=torch.int64, device=device)
        dist.broadcast(groups, src, group=self.group)
        if cache.num_groups is None:
            cache.allocate(int(groups))
        for store in (cache.k, cache.v):
            for layer in store:
                piece = layer[:, :, start:end].to(device).contiguous()
                dist.broadcast(piece, src, group=self.group)
                if not self.runs(writer):
                    layer[:, :, start:end].copy_(piece)
