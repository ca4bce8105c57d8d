"""Build a Verified submission package from finished runs (see the package doc)."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipeline.errors import PipelineError

from .card import card, person_fields
from .checks import DESCRIPTION_COLUMNS, package_problems, submission_id


@dataclass
class RunPart:
    """What one run brings: its videos in submission order, its description rows and scores."""

    run_dir: Path
    videos: list[Path]
    rows: list[dict[str, str]]
    verified: dict[str, float]
    original: float
    facts: dict[str, Any] = field(default_factory=dict)


def read_run(run_dir: str | Path, descriptions: str | None) -> RunPart:
    """One finished run (evaluate done), or a :class:`PipelineError` saying what it lacks."""
    from pipeline.benchmarks.physicsiq.iq_score import read_results_csv
    from pipeline.benchmarks.physicsiq.verified import run_scores
    from pipeline.config import load_run_config, replica_size
    from pipeline.items import Manifest
    from pipeline.search import num_candidates
    from pipeline.stages.base import ALL
    from pipeline.store import RunStore
    from pipeline.video_io import probe_video

    run_dir = Path(run_dir)
    _, cfg = load_run_config(run_dir)
    store = RunStore(run_dir)
    evaluated = store.read("evaluate", ALL)
    if evaluated is None or not evaluated.done:
        raise PipelineError(f"run={run_dir}: evaluate has not finished (python -m pipeline resume run={run_dir})")
    manifest = Manifest.load(store)
    videos, rows, seconds = [], [], 0.0
    for item_id in sorted(manifest.ids()):
        conformed, sampled = store.read("conform", item_id), store.read("sample", item_id)
        if conformed is None or not conformed.done or sampled is None:
            raise PipelineError(f"run={run_dir}: item {item_id} has no conformed video")
        item = manifest.get(item_id)
        videos.append(store.path(conformed.outputs["video"]))
        rows.append(
            {"scenario": item.scenario, "description": item.prompt, "generated_video_name": item.submission_name}
        )
        seconds += float(sampled.data.get("compute", {}).get("seconds", 0.0))
    shipped = {None: "op", "op": "op", "bpp": "bpp"}
    if descriptions is None and cfg.benchmark.prompts in shipped:
        descriptions = shipped[cfg.benchmark.prompts]
    if cfg.benchmark.prompts not in shipped and descriptions is None:
        raise PipelineError(
            f"run={run_dir} used benchmark.prompts={cfg.benchmark.prompts}: say which prompt set it is "
            "(descriptions=bpp for the best-practice prompts, descriptions=op for the original ones)"
        )
    info = probe_video(videos[0])
    facts = {
        # the submission id's model part: lower case, digits, '.' and '-' (checks.SUBMISSION_ID)
        "model": slug(f"{cfg.generator.kind}-{getattr(cfg.generator, 'variant', '')}".strip("-")),
        "mode": cfg.benchmark.mode,
        "fps": cfg.generator.fps,
        "resolution": f"{info.width}x{info.height}",
        "candidates": num_candidates(cfg.search),
        "selection": f"{cfg.search.name}, chosen by {cfg.reward.name}",
        "descriptions": descriptions,
        "gpus_per_copy": replica_size(cfg, "sample"),
        "seconds_per_video": round(seconds / max(len(videos), 1), 1),
        "expected": _dataset_size(cfg),
        "board": cfg.benchmark.board,
    }
    table = read_results_csv(store.path(evaluated.outputs["csv"]))
    return RunPart(run_dir, videos, rows, run_scores(table), float(evaluated.data["score"]), facts)


def _dataset_size(cfg) -> int:
    """Take-1 items of the whole benchmark the run drew from (198 for Physics-IQ)."""
    from pipeline.benchmarks.physicsiq.layout import PhysicsIQDataset

    return len(PhysicsIQDataset(cfg.benchmark.root, cfg.benchmark.descriptions))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip("-") or "model"


SHARED = ("model", "mode", "fps", "resolution", "candidates", "descriptions", "expected", "board")


def write_package(
    run_dirs: Sequence[str | Path], out: str | Path, given: dict[str, str], descriptions: str | None = None
) -> tuple[Path, dict[str, Any], list[RunPart]]:
    """The package at ``out`` (made whole or not at all), its card and the runs; a
    :class:`PipelineError` naming every problem when the runs disagree or the package breaks a rule."""
    from pipeline.benchmarks.physicsiq.verified import aggregate

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise PipelineError(f"out={out} exists and is not empty; choose a new folder")
    parts = [read_run(r, descriptions) for r in run_dirs]
    differ = [k for k in SHARED if len({str(p.facts[k]) for p in parts}) > 1]
    if differ:
        seen = "; ".join(f"{k}: " + ", ".join(f"{p.run_dir.name}={p.facts[k]}" for p in parts) for k in differ)
        raise PipelineError(f"the runs of one submission must share their settings; they differ in {seen}")
    facts = dict(parts[0].facts)
    facts["seconds_per_video"] = round(sum(p.facts["seconds_per_video"] for p in parts) / len(parts), 1)
    scores = aggregate([p.verified for p in parts])
    the_card = card(facts, scores, given)
    name = slug(str(the_card["public_info"]["model"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for k, part in enumerate(parts, start=1):
            folder = staging / "runs" / f"{name}-{facts['descriptions']}-run_{k:02d}"
            folder.mkdir(parents=True)
            for video in part.videos:
                shutil.copy2(video, folder / video.name)
        rows = {r["generated_video_name"]: r for p in parts for r in p.rows}
        pd.DataFrame(list(rows.values()), columns=list(DESCRIPTION_COLUMNS)).to_csv(
            staging / "descriptions.csv", index=False
        )
        (staging / "submission.yaml").write_text(yaml.safe_dump(the_card, sort_keys=False))
        problems = package_problems(staging, facts["expected"])
        if problems:
            raise PipelineError(f"the package breaks {len(problems)} rule(s):\n  " + "\n  ".join(problems))
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out, the_card, parts


def summary(out: Path, the_card: dict[str, Any], parts: list[RunPart]) -> str:
    from pipeline.benchmarks.physicsiq.verified import describe

    reported = the_card["reported_scores"]
    agg = {
        "physiq_mean": reported["physiq_mean"],
        "physiq_std": reported["physiq_std"],
        "runs": len(parts),
        "physiq_sem_over_samples": sum(p.verified["physiq_sem_over_samples"] for p in parts) / len(parts) * 100,
    }
    lines = [f"package: {out} (passes the leaderboard's checks)"]
    for k, p in enumerate(parts, start=1):
        lines.append(
            f"  run_{k:02d} {p.run_dir}: Physics-IQ Verified {p.verified['physiq'] * 100:.2f}, "
            f"Physics-IQ Original {p.original:.2f}"
        )
    lines.append(describe(agg))
    ident = submission_id(the_card["public_info"])
    lines.append(
        f"submission id: {ident}"
        if ident
        else "submission id: <organization>__<model>__<date> once organization is filled"
    )
    if parts[0].facts.get("board") != "verified":
        lines.append(
            "note: these runs were scored on the Original ground truth (benchmark.board=original): the reported "
            "scores are the Verified formula on it, not Verified-board numbers (run with benchmark=physicsiq_verified)"
        )
    todo = person_fields(the_card)
    if todo:
        lines.append("before uploading, a person fills in submission.yaml: " + ", ".join(todo))
    return "\n".join(lines)
