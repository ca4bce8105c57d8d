"""A real SLURM cluster for the launcher tests: slurm/local_cluster.sh starts one on this machine
when it can (root + apt). Elsewhere the tests skip with a message, unless PIPELINE_REQUIRE_SLURM=1
(set by .ci/run), which turns the skip into a failure so CI always runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import wait_until  # noqa: F401  (the SLURM tests import it from here)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "slurm" / "local_cluster.sh"


def _unavailable(reason: str):
    if os.environ.get("PIPELINE_REQUIRE_SLURM") == "1":
        pytest.fail(f"SLURM tests are required here (PIPELINE_REQUIRE_SLURM=1) but: {reason}")
    pytest.skip(f"no local SLURM cluster: {reason}")


@pytest.fixture(scope="session")
def slurm_cluster():
    if shutil.which("sbatch") and subprocess.run(["scontrol", "ping"], capture_output=True).returncode == 0:
        yield "running"
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        _unavailable("starting one needs root and apt-get")
    res = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        _unavailable(f"slurm/local_cluster.sh start failed:\n{res.stderr[-3000:]}")
    try:
        yield "started"
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, timeout=120)


def queue_empty(job_ids: list[str]) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", ",".join(job_ids)], capture_output=True, text=True).stdout
    return not out.strip()
