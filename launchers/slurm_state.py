"""SLURM job states for ``pipeline status``: squeue for live jobs (accounting lags a few seconds
behind), sacct for finished ones. Missing commands or errors give "unknown", never a crash."""

from __future__ import annotations

import shutil
import subprocess


def _run(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None:
        return ""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def job_states(job_ids: list[str]) -> dict[str, str]:
    """State per job or array task id ("123" or "123_4"); arrays are expanded per task."""
    if not job_ids:
        return {}
    masters = sorted({j.split("_")[0] for j in job_ids})
    states: dict[str, str] = {}
    out = _run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(masters)])
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) >= 2:
            states[parts[0]] = parts[1].split()[0]  # "CANCELLED by 0" -> CANCELLED
    out = _run(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(masters)])
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 2:
            states[parts[0]] = parts[1]  # live state wins over lagging accounting
    return states


def state_of(states: dict[str, str], job_id: str) -> str:
    if job_id in states:
        return states[job_id]
    master = job_id.split("_")[0]
    # A pending array shows as "123_[0-2]" before its tasks are split out.
    for key, value in states.items():
        if key.startswith(master + "_[") or key == master:
            return value
    return "UNKNOWN"
