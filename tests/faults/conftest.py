"""A local run of the demo chain as a user starts it (``python -m pipeline run`` in its own
process group), and helpers to interrupt it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import wait_until  # noqa: F401  (the fault tests import it from here)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def chain_args(one_scenario):
    return [*one_scenario, "tracking.progress=false"]


def start_run(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish_run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "run", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def run_dir_of(out: str) -> Path:
    return Path(re.search(r"^run: (.+)$", out, re.M).group(1))


def only_run(run_root: Path) -> Path | None:
    runs = [p for p in run_root.glob("*/*") if (p / "run.json").exists()]
    return runs[0] if runs else None


def events(run_root: Path) -> list[dict]:
    """Every attempt event written so far, all stages together."""
    run = only_run(run_root)
    if run is None:
        return []
    out = []
    for path in run.glob("*/attempts/*.jsonl"):
        try:
            lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        except (OSError, ValueError):  # a line being appended right now
            continue
        out += [{**e, "stage": path.parent.parent.name, "item": path.stem} for e in lines]
    return out


def kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
