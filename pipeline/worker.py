"""Where this process runs, as recorded with every attempt: the host and process, and under SLURM
the job (array task), its restart count and the rank."""

from __future__ import annotations

import os
from typing import Any


def worker_identity() -> dict[str, Any]:
    """Where an attempt ran: the SLURM job (array task, restart) or the local process."""
    env = os.environ
    ident: dict[str, Any] = {"host": os.uname().nodename, "pid": os.getpid()}
    if "SLURM_JOB_ID" in env:
        ident["job"] = (
            f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
            if "SLURM_ARRAY_JOB_ID" in env
            else env["SLURM_JOB_ID"]
        )
        ident["restart"] = int(env.get("SLURM_RESTART_COUNT", 0))
        ident["rank"] = int(env.get("SLURM_PROCID", 0))
    return ident
