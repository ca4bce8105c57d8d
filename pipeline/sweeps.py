"""Sweeps: named sets of runs, one per point of a multirun (``-m``) or of a sweep file
(``conf/sweeps/``), recorded in ``<run_root>/sweeps/<sweep>.jsonl``, one line per point launched,
for ``python -m pipeline compare sweep=NAME`` and wandb's ``group``. The points' shared stage work
is the per-stage caches' (``pipeline.stage_cache``); on SLURM a sweep's points also share the jobs
that make it (``launchers.slurm``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.files import append_jsonl, read_jsonl

SWEEPS_DIR = "sweeps"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_STARTED: dict[str, str] = {}  # this process's multirun: one default name for all its points


def name_problems(name: str | None) -> list[str]:
    if name is None or _NAME.match(name):
        return []
    return [f"sweep={name!r}: letters, digits, '.', '_' and '-' only (it names a file), up to 128"]


def default_name(experiment: str) -> str:
    """``<experiment>-<date>-<time>`` of the first point this process launched."""
    return _STARTED.setdefault(experiment, f"{experiment}-{time.strftime('%Y%m%d-%H%M%S')}")


def sweep_file(run_root: str | Path, sweep: str) -> Path:
    return Path(run_root) / SWEEPS_DIR / f"{sweep}.jsonl"


def record_point(run_root: str | Path, sweep: str, run_dir: Path, overrides: list[str]) -> None:
    """Add a point: its run folder (relative to the run root) and the overrides that made it."""
    rel = str(Path(run_dir).resolve().relative_to(Path(run_root).resolve()))
    append_jsonl(sweep_file(run_root, sweep), {"run": rel, "overrides": list(overrides), "time": time.time()})


def points(run_root: str | Path, sweep: str) -> list[dict[str, Any]]:
    """The sweep's points in launch order, one per run folder (its last launch's overrides)."""
    path = sweep_file(run_root, sweep)
    if not path.exists():
        known = sorted(p.stem for p in (Path(run_root) / SWEEPS_DIR).glob("*.jsonl"))
        raise ConfigError(f"sweep={sweep}: no such sweep in {Path(run_root)} (known: {', '.join(known) or 'none'})")
    by_run: dict[str, dict[str, Any]] = {}  # first launch's place, last launch's overrides
    for line in read_jsonl(path):
        by_run[line["run"]] = {**line, "run_dir": Path(run_root) / line["run"]}
    return list(by_run.values())
