"""Replica groups inside one job: every ``replica_size`` consecutive ranks hold one model copy,
spread over the parallel dimensions the generator names (``Generator.replica_dims``).

Ranks come from SLURM (``srun`` starts one task per GPU: SLURM_PROCID, SLURM_NTASKS,
SLURM_LOCALID) or, on one machine, torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK: see
``launchers.local_replicas``). Replicas of size 1 need no communication at all (the item claims
coordinate them); larger replicas join one torch.distributed job (NCCL on GPUs, gloo on CPUs) whose
rendezvous is the allocation's first node, and the leader broadcasts each item to its group.
"""

from __future__ import annotations

import math
import os
import subprocess
from dataclasses import dataclass
from typing import Any

from pipeline.distributed import replica_group


def first_node() -> str:
    nodelist = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST")
    if not nodelist:
        return "127.0.0.1"
    try:
        out = subprocess.run(
            ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True, timeout=30
        ).stdout.split()
        return out[0] if out else nodelist
    except (OSError, subprocess.SubprocessError):
        return nodelist.split(",")[0]


def rendezvous_port() -> int:
    """A port every rank of the job derives alike, different between jobs on shared nodes."""
    job = os.environ.get("SLURM_JOB_ID", "0")
    return 20000 + int(job) % 20000 if job.isdigit() else 29500


@dataclass
class ReplicaGroup:
    rank: int = 0
    world: int = 1
    replica_size: int = 1
    group: Any = None  # torch.distributed group of this replica (None when replica_size == 1)
    mesh: Any = None  # DeviceMesh of all ranks, dims ("replica", *replica dims): what a split model uses

    @property
    def is_leader(self) -> bool:
        return self.rank % self.replica_size == 0

    @property
    def leader(self) -> int:
        return self.rank - self.rank % self.replica_size

    @classmethod
    def from_env(cls, dims: dict[str, int]) -> ReplicaGroup:
        """The replicas of this job's ranks; ``dims``: the parallel dimensions of one model copy
        (outermost first; empty: one rank per copy)."""
        replica_size = math.prod(dims.values())
        # srun's variables in a SLURM job, torchrun's elsewhere (launchers.local_replicas)
        rank = int(os.environ.get("SLURM_PROCID", os.environ.get("RANK", 0)))
        world = int(os.environ.get("SLURM_NTASKS", os.environ.get("WORLD_SIZE", 1)))
        if world % replica_size:
            raise RuntimeError(f"{world} ranks cannot form replicas of {replica_size}")
        _bind_local_gpu()
        if replica_size == 1:
            return cls(rank, world, 1)
        import torch
        import torch.distributed as dist

        os.environ.setdefault("MASTER_ADDR", first_node())
        os.environ.setdefault("MASTER_PORT", str(rendezvous_port()))
        from torch.distributed.device_mesh import init_device_mesh

        cuda = torch.cuda.is_available()
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
        # replicas outermost: consecutive ranks form one (every rank builds every group)
        names = ("replica", *dims)
        mesh = init_device_mesh(
            "cuda" if cuda else "cpu", (world // replica_size, *dims.values()), mesh_dim_names=names
        )
        return cls(rank, world, replica_size, replica_group(mesh)[0], mesh)

    def announce(self, item: str | None) -> None:
        if self.group is not None:
            import torch.distributed as dist

            dist.broadcast_object_list([item], src=self.leader, group=self.group)

    def receive(self) -> str | None:
        import torch.distributed as dist

        box = [None]
        dist.broadcast_object_list(box, src=self.leader, group=self.group)
        return box[0]

    def close(self) -> None:
        if self.group is not None:
            import torch.distributed as dist

            dist.destroy_process_group()


def _bind_local_gpu() -> None:
    local = os.environ.get("SLURM_LOCALID", os.environ.get("LOCAL_RANK"))
    if local is None:
        return
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(local) % torch.cuda.device_count())
