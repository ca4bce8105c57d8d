"""The leaderboard's rules for a Verified submission package, each offending file named:

* ``submission.yaml``, ``descriptions.csv`` and ``runs/<run>/`` folders;
* exactly ``expected`` mp4 files per run (198 for Physics-IQ), the i-th in name order starting
  with ``{i:04d}_``;
* each 5.000 ± 0.001 s long (container duration), of the card's resolution, and one frame rate
  per run within 0.01 of the card's ``fps``;
* ``descriptions.csv`` with the columns ``scenario``, ``description``, ``generated_video_name``
  listing every file of every run;
* the submission id ``<organization>__<model>__<date>`` matching the leaderboard's pattern, once
  the organization (a person's field) is filled.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import yaml

from pipeline.benchmarks.physicsiq.contract import DURATION_S, DURATION_TOL_S
from pipeline.video_io import VideoError, probe_video

EXPECTED_FILES = 198
FPS_TOL = 0.01
DESCRIPTION_COLUMNS = ("scenario", "description", "generated_video_name")
SUBMISSION_ID = re.compile(r"^[a-z0-9]+__[a-z0-9.-]+__\d{4}-\d{2}-\d{2}$")
ID_PARTS = (("organization", r"[a-z0-9]+"), ("model", r"[a-z0-9.-]+"), ("date", r"\d{4}-\d{2}-\d{2}"))


def submission_id(card: dict) -> str | None:
    """``<organization>__<model>__<date>`` of the card's public_info (None until all are filled)."""
    parts = [str(card.get(name) or "") for name, _ in ID_PARTS]
    return "__".join(parts) if all(parts) else None


def submission_id_problems(card: dict, where: Path) -> list[str]:
    """The card fields that keep the submission id off the leaderboard's pattern, each named."""
    ident = submission_id(card)
    if ident is None or SUBMISSION_ID.match(ident):
        return []
    bad = [
        f"{name}={card.get(name)!r} (must match {pattern})"
        for name, pattern in ID_PARTS
        if not re.fullmatch(pattern, str(card.get(name)))
    ]
    return [f"{where}: submission id {ident!r} does not match {SUBMISSION_ID.pattern}: " + "; ".join(bad)]


def package_problems(root: str | Path, expected: int = EXPECTED_FILES) -> list[str]:
    """Every rule the package at ``root`` breaks, one line each (empty: it passes)."""
    root = Path(root)
    out: list[str] = []
    card_path, table_path, runs_dir = root / "submission.yaml", root / "descriptions.csv", root / "runs"
    for path in (card_path, table_path, runs_dir):
        if not path.exists():
            out.append(f"{path}: missing")
    if out:
        return out
    card = (yaml.safe_load(card_path.read_text()) or {}).get("public_info", {})
    out += submission_id_problems(card, card_path)
    fps, resolution = card.get("fps"), str(card.get("resolution") or "")
    runs = sorted(p for p in runs_dir.iterdir() if p.is_dir())
    if not runs:
        out.append(f"{runs_dir}: no run folders")
    listed: set[str] = set()
    table = pd.read_csv(table_path, dtype=str, keep_default_na=False)
    missing = [c for c in DESCRIPTION_COLUMNS if c not in table.columns]
    if missing:
        out.append(f"{table_path}: missing columns {missing}")
    else:
        listed = set(table["generated_video_name"])
    for run in runs:
        out += _run_problems(run, expected, fps, resolution, listed if not missing else None)
    return out


def _run_problems(run: Path, expected: int, fps, resolution: str, listed: set[str] | None) -> list[str]:
    out = []
    files = sorted(run.glob("*.mp4"))
    if len(files) != expected:
        out.append(f"{run}: {len(files)} mp4 files, the leaderboard wants {expected}")
    rates: dict[float, list[str]] = {}
    for i, path in enumerate(files, start=1):
        if not path.name.startswith(f"{i:04d}_"):
            out.append(f"{path}: file {i} of the run must start with {i:04d}_ (a missing or extra id before it)")
        if listed is not None and path.name not in listed:
            out.append(f"{path}: not listed in descriptions.csv")
        try:
            info = probe_video(path)
        except VideoError as exc:
            out.append(str(exc))
            continue
        if not abs(info.duration - DURATION_S) <= DURATION_TOL_S:
            out.append(f"{path}: {info.duration:.3f} s long, must be {DURATION_S:.3f} ± {DURATION_TOL_S} s")
        if resolution and f"{info.width}x{info.height}" != resolution:
            out.append(f"{path}: {info.width}x{info.height}, the card says resolution {resolution}")
        rates.setdefault(round(info.fps, 3), []).append(path.name)
    if len(rates) > 1:
        seen = ", ".join(f"{r:g} fps ({len(n)} file(s), e.g. {n[0]})" for r, n in sorted(rates.items()))
        out.append(f"{run}: more than one frame rate: {seen}")
    for rate, names in rates.items():
        if fps is not None and not (isinstance(fps, (int, float)) and math.isclose(rate, fps, abs_tol=FPS_TOL)):
            out.append(
                f"{run}: {rate:g} fps ({', '.join(names[:3])}{'...' if len(names) > 3 else ''}), the card says {fps}"
            )
    return out
