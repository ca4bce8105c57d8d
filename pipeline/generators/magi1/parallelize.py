"""MAGI-1 across the GPUs of a replica, applied from outside the model (torchtitan's way): a
:class:`Layout` names the parallel dimensions of a job's ranks and builds their DeviceMesh, and
:func:`parallelize` turns a loaded single-process :class:`~.dit.MagiDiT` into its rank's share.

Tensor parallelism (``torch.distributed.tensor.parallel``, Megatron's split, which the official
checkpoint names follow): in every layer q, qx, k, v and the cross-attention K/V are column-wise
by heads (each rank computes its heads' attention, the KV cache holds its groups only),
``linear_proj`` is row-wise (one all-reduce), ``linear_fc1`` column-wise with a SwiGLU's gate and
up halves kept paired, ``linear_fc2`` row-wise (one all-reduce). The rest (embedders, norms,
adaLN, final linear) is replicated. The model code sees local tensors and views with -1, so it
needs no parallel branch. Sequence (Ulysses) and CFG parallelism are later dimensions of the
same Layout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from .dit import PROJ_PERMUTE_HN

DIMS = ("tp",)  # parallel dimensions inside a replica, outermost first


@dataclass(frozen=True)
class Layout:
    """Ranks of one job = ``replicas`` x ``tp``; each replica holds one model copy."""

    tp: int = 1
    replicas: int = 1

    @property
    def replica_size(self) -> int:
        return self.tp

    @property
    def world_size(self) -> int:
        return self.replicas * self.replica_size

    @classmethod
    def parse(cls, text: str, world_size: int | None = None) -> Layout:
        """``"tp=2"`` (keys optional, default 1); with ``world_size`` the replicas fill the rest."""
        values: dict[str, int] = {}
        for token in filter(None, (t.strip() for t in text.split(","))):
            key, sep, value = token.partition("=")
            if not sep or key not in DIMS or not value.isdigit() or int(value) < 1:
                raise ValueError(f"--parallel {text!r}: write {','.join(f'{d}=N' for d in DIMS)} (N >= 1)")
            values[key] = int(value)
        layout = cls(**values)
        if world_size is not None:
            if world_size % layout.replica_size:
                raise ValueError(
                    f"--parallel {text!r}: {layout.replica_size} rank(s) per replica do not divide {world_size}"
                )
            layout = cls(**values, replicas=world_size // layout.replica_size)
        return layout

    def problems(self, model_cfg: Any) -> list[str]:
        """What this layout cannot split in the model (one entry per field), before any work."""
        m = model_cfg
        out: list[str] = []
        t = self.tp
        if t == 1:
            return out
        for name, n in (
            ("num_attention_heads", m.num_attention_heads),
            ("num_query_groups", m.num_query_groups),
            ("ffn_hidden_size", m.ffn_hidden_size),
        ):
            if n % t:
                out.append(f"tp={t}: does not divide the model's {name}={n}")
        if PROJ_PERMUTE_HN % t:
            out.append(f"tp={t}: must divide {PROJ_PERMUTE_HN} (MAGI-1's fixed output permutation of the heads)")
        return out

    def mesh(self, device_type: str):
        """The DeviceMesh of all ranks, dims ("replica", "tp")."""
        from torch.distributed.device_mesh import init_device_mesh

        return init_device_mesh(device_type, (self.replicas, self.tp), mesh_dim_names=("replica", "tp"))


def _paired(name: str, model_cfg: Any) -> bool:
    """A SwiGLU fc1 weight: rows [gate | up], whose column-wise split keeps the halves paired."""
    return model_cfg.gated_linear_unit and name.endswith("mlp.linear_fc1.weight")


def _rows_of(rank: int, parts: int, rows: int, paired: bool) -> list[tuple[int, int]]:
    """Row ranges (of the checkpoint's tensor) that rank ``rank`` of ``parts`` holds along dim 0;
    a paired fc1 gives each rank [gate_r | up_r], so its local chunk(2) is (gate, up)."""
    if not paired:
        block = rows // parts
        return [(rank * block, (rank + 1) * block)]
    half = rows // 2
    block = half // parts
    return [(rank * block, (rank + 1) * block), (half + rank * block, half + (rank + 1) * block)]


def _pair_halves(linear: torch.nn.Linear, parts: int) -> None:
    """Reorder an in-memory SwiGLU fc1's rows to [gate_0 up_0 | gate_1 up_1 | ...] before it is
    split column-wise (the same ranges as a rank-local load reads)."""
    w = linear.weight.data
    linear.weight.data = torch.cat([w[a:b] for r in range(parts) for a, b in _rows_of(r, parts, w.shape[0], True)])


def local_reads(name: str, param: Any, model_cfg: Any) -> list[tuple[slice, ...]] | None:
    """What this rank reads of checkpoint tensor ``name`` for its shard of ``param`` (a DTensor
    parameter of a model parallelized on the meta device): index tuples whose pieces, concatenated
    along dim 0 (column-wise) or taken alone (row-wise), are its local tensor. None: a plain,
    replicated parameter (read whole)."""
    from torch.distributed.tensor import Shard

    placements = getattr(param, "placements", None)
    if placements is None:
        return None
    (placement,) = placements  # the tp dim of the mesh the plan used
    if not isinstance(placement, Shard):
        return None
    mesh = param.device_mesh
    rank, parts = mesh.get_local_rank(), mesh.size()
    dim, size = placement.dim, param.shape[placement.dim]
    ranges = _rows_of(rank, parts, size, dim == 0 and _paired(name, model_cfg))
    return [tuple([slice(None)] * dim + [slice(a, b)]) for a, b in ranges]


def parallelize(model, layout: Layout, mesh) -> Any:
    """Shard ``model`` over ``mesh["tp"]`` in place: a loaded MagiDiT (the same weights on every
    rank; each keeps its share), or one on the meta device that ``checkpoint.load_dit`` then fills
    with each rank's slices only (``local_reads``)."""
    problems = layout.problems(model.cfg)
    if problems:
        raise ValueError("; ".join(problems))
    if layout.tp == 1:
        return model
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    tp = mesh["tp"]
    for layer in model.videodit_blocks.layers:
        if model.cfg.gated_linear_unit and not layer.mlp.linear_fc1.weight.is_meta:
            _pair_halves(layer.mlp.linear_fc1, layout.tp)
        plan = {
            "self_attention.linear_qkv.q": ColwiseParallel(),
            "self_attention.linear_qkv.qx": ColwiseParallel(),
            "self_attention.linear_qkv.k": ColwiseParallel(),
            "self_attention.linear_qkv.v": ColwiseParallel(),
            "self_attention.linear_kv_xattn": ColwiseParallel(),
            "self_attention.linear_proj": RowwiseParallel(),
            "mlp.linear_fc1": ColwiseParallel(),
            "mlp.linear_fc2": RowwiseParallel(),
        }
        parallelize_module(layer, tp, plan)
    return model


def init_distributed() -> tuple[int, int]:
    """(rank, world size) of a torchrun / srun launch, the process group made (NCCL on CUDA, gloo
    otherwise); (0, 1) without one."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()
