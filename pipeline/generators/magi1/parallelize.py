"""MAGI-1 across the GPUs of a replica, applied from outside the model (torchtitan's way): a
:class:`Layout` names the parallel dimensions of a job's ranks and builds their DeviceMesh, and
:func:`parallelize` turns a single-process :class:`~.dit.MagiDiT` into its rank's share.

The ranks of one job are ``replicas x cfg x sp x tp`` (outermost first, so a replica is
consecutive ranks and its tensor-parallel ranks are nearest, on one NVLink island):

* **tp** (``torch.distributed.tensor.parallel``, Megatron's split, which the official checkpoint
  names follow): in every layer q, qx, k, v and the cross-attention K/V are column-wise by heads
  (each rank computes its heads' attention, the KV cache holds its groups only), ``linear_proj``
  row-wise (one all-reduce), ``linear_fc1`` column-wise with a SwiGLU's gate and up halves kept
  paired, ``linear_fc2`` row-wise (one all-reduce). With fewer KV groups than ranks, k, v and the
  cross-attention K/V repeat each group so a rank holds the one its query heads use. The rest is
  replicated.
* **sp** (Ulysses, ``ulysses.py``): each rank holds a share of every chunk's tokens; two
  all-to-alls per layer around self-attention; the KV cache is head-sharded behind that seam.
* **cfg** (``cfg_parallel.py``): the CFG passes of a base model's step on separate ranks,
  combined exactly as in one process; the KV cache the null-caption pass writes is sent to the
  others.

The model code sees local tensors and views with -1, so it needs no parallel branch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch

from .dit import PROJ_PERMUTE_HN

# every transformer layer's tensor-parallel plan: column-wise by heads (their KV cache too) or by
# MLP units, row-wise where the heads / units are summed back (one all-reduce each)
TP_PLAN = {
    "self_attention.linear_qkv.q": "column",
    "self_attention.linear_qkv.qx": "column",
    "self_attention.linear_qkv.k": "column",
    "self_attention.linear_qkv.v": "column",
    "self_attention.linear_kv_xattn": "column",
    "self_attention.linear_proj": "row",
    "mlp.linear_fc1": "column",
    "mlp.linear_fc2": "row",
}
# the linears whose output rows come in KV groups: with fewer groups than tensor-parallel ranks
# each group is repeated so every rank holds the one its query heads use
KV_GROUPED = ("self_attention.linear_qkv.k", "self_attention.linear_qkv.v", "self_attention.linear_kv_xattn")
DIMS = ("cfg", "sp", "tp")  # parallel dimensions inside a replica, outermost first
MESH_DIMS = ("replica", *DIMS)
CFG_PASSES = 3  # a base model's step: text + history, null caption + history, each chunk alone


@dataclass(frozen=True)
class Layout:
    """Ranks of one job = ``replicas x cfg x sp x tp``; each replica holds one model copy."""

    cfg: int = 1
    sp: int = 1
    tp: int = 1
    replicas: int = 1

    @property
    def replica_size(self) -> int:
        return self.cfg * self.sp * self.tp

    @property
    def world_size(self) -> int:
        return self.replicas * self.replica_size

    def __str__(self) -> str:
        return ",".join(f"{d}={getattr(self, d)}" for d in DIMS)

    @classmethod
    def parse(cls, text: str, world_size: int | None = None) -> Layout:
        """``"tp=2,sp=2,cfg=3"`` (keys optional, default 1); with ``world_size`` the replicas fill
        the rest."""
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

    @classmethod
    def of_mesh(cls, mesh) -> Layout:
        """The layout of a mesh whose dims are "replica" and any of :data:`DIMS` (absent = 1)."""
        names = mesh.mesh_dim_names
        return cls(**{d: mesh[d].size() for d in DIMS if d in names}, replicas=mesh["replica"].size())

    def problems(self, model_cfg: Any, cfg_number: int = 3, tokens_per_chunk: int | None = None) -> list[str]:
        """What this layout cannot split in the model (one entry per dimension), before any work.
        ``cfg_number``: the passes of one step (3 base, 1 distill)."""
        m = model_cfg
        out: list[str] = []
        t, s, c = self.tp, self.sp, self.cfg
        H, G = m.num_attention_heads, m.num_query_groups
        if t > 1:
            for name, n in (("num_attention_heads", H), ("ffn_hidden_size", m.ffn_hidden_size)):
                if n % t:
                    out.append(f"tp={t}: does not divide the model's {name}={n}")
            if G % t and t % G:
                out.append(
                    f"tp={t}: neither divides nor is a multiple of the model's num_query_groups={G}, so the "
                    "KV groups can be neither split nor replicated"
                )
            if PROJ_PERMUTE_HN % t:
                out.append(f"tp={t}: must divide {PROJ_PERMUTE_HN} (MAGI-1's fixed output permutation of the heads)")
        if s > 1 and not out:
            heads, groups = H // t, max(1, G // t)
            if heads % s:
                out.append(
                    f"sp={s}: does not divide the {heads} attention heads of a rank (num_attention_heads={H}, tp={t})"
                )
            elif groups % s and s % groups:
                out.append(
                    f"sp={s}: neither divides nor is a multiple of the {groups} KV groups of a rank "
                    f"(num_query_groups={G}, tp={t}), so they can be neither split nor replicated"
                )
        if c > 1:
            if cfg_number != CFG_PASSES:
                out.append(f"cfg={c}: this model makes {cfg_number} pass(es) per step (distilled); set cfg=1")
            elif c > CFG_PASSES:
                out.append(f"cfg={c}: a step has {CFG_PASSES} CFG passes to spread; at most cfg={CFG_PASSES}")
        if s > 1 and tokens_per_chunk is not None and tokens_per_chunk < s:
            out.append(f"sp={s}: more ranks than the {tokens_per_chunk} tokens of a chunk")
        return out

    def mesh(self, device_type: str):
        """The DeviceMesh of all ranks, dims ("replica", "cfg", "sp", "tp")."""
        from torch.distributed.device_mesh import init_device_mesh

        shape = (self.replicas, self.cfg, self.sp, self.tp)
        return init_device_mesh(device_type, shape, mesh_dim_names=MESH_DIMS)

    def tokens_share(self, tokens_per_chunk: int) -> int:
        """Tokens of each chunk one rank holds (the sequence shards)."""
        return math.ceil(tokens_per_chunk / self.sp)


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


def _repeat_groups(linear: torch.nn.Linear, groups: int, times: int) -> None:
    """Each KV group's rows ``times`` times in a row (on the meta device too), so a column-wise
    split over ``groups * times`` ranks gives rank r the group of its query heads, r // times."""
    w = linear.weight
    grown = w.view(groups, -1, w.shape[1]).repeat_interleave(times, dim=0).reshape(-1, w.shape[1])
    linear.weight = torch.nn.Parameter(grown, requires_grad=False)
    linear.out_features = grown.shape[0]


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
    groups = model_cfg.num_query_groups
    if groups < parts and name.rsplit(".", 1)[0].endswith(KV_GROUPED):  # replicated: this rank's group
        rows = size // parts
        group = rank // (parts // groups)
        return [(slice(group * rows, (group + 1) * rows),)]
    ranges = _rows_of(rank, parts, size, dim == 0 and _paired(name, model_cfg))
    return [tuple([slice(None)] * dim + [slice(a, b)]) for a, b in ranges]


def parallelize(model, layout: Layout, mesh) -> Any:
    """Split ``model`` over ``mesh`` in place (dims as :meth:`Layout.mesh`): a loaded MagiDiT (the
    same weights on every rank; each keeps its share), or one on the meta device that
    ``checkpoint.load_dit`` then fills with each rank's slices only (``local_reads``). The cfg
    dimension leaves the model whole (its passes are the sampler's: ``cfg_parallel.CfgSplit``)."""
    problems = layout.problems(model.cfg)
    if problems:
        raise ValueError("; ".join(problems))
    if layout.tp > 1:
        _tensor_parallel(model, layout, mesh["tp"])
    if layout.sp > 1:
        from .ulysses import TokenShards, UlyssesAttention

        sp = mesh["sp"]
        model.sequence = TokenShards(sp.get_group(), sp.get_local_rank(), layout.sp)
        for layer in model.videodit_blocks.layers:
            attn = layer.self_attention
            attn.core_attention = UlyssesAttention(attn.core_attention, sp.get_group(), layout.sp)
    return model


def _tensor_parallel(model, layout: Layout, tp) -> None:
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    groups = model.cfg.num_query_groups
    for layer in model.videodit_blocks.layers:
        if model.cfg.gated_linear_unit and not layer.mlp.linear_fc1.weight.is_meta:
            _pair_halves(layer.mlp.linear_fc1, layout.tp)
        if groups < layout.tp:
            for name in KV_GROUPED:
                _repeat_groups(layer.get_submodule(name), groups, layout.tp // groups)
        style = {"column": ColwiseParallel, "row": RowwiseParallel}
        parallelize_module(layer, tp, {name: style[how]() for name, how in TP_PLAN.items()})


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
