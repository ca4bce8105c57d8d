"""Evaluate a folder of generations against a Physics-IQ dataset, like ``run_physics_iq.py``.

Differences from the official driver, on purpose: the generated folder is only read (the
official renames files in place; we pair files with items by their ``NNNN_`` prefix), all
problems with a submission are collected and reported together (what the containers show before
any metric work, frames that fail to decode after it, and nothing is written then), masks are
cached by content instead of by folder name, and any number of items (a synthetic subset) is
accepted. The metric and score arithmetic is the official one.

Speed: validation reads containers only; the (scenario, view) jobs run in ``workers`` processes
with one decoder thread each; every generation is decoded once; the ground truth's grid clips
(resized frames + binarised masks) are cached by content (metrics.GroundTruthCache), so after the
first evaluation at an fps only the generations are decoded and masked.
"""

from __future__ import annotations

import math
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.errors import PipelineError
from pipeline.video_io import VideoError, probe_video

from . import iq_score as sc
from .contract import DURATION_S, DURATION_TOL_S
from .layout import VIEWS, PhysicsIQDataset
from .masks import MaskCache, use_one_decoder_thread, video_fps
from .metrics import GroundTruthCache, build_grid_clip, clip_metrics, window
from .resample import ensure_testing_clips

_ID = re.compile(r"^(\d{4})_")


class SubmissionError(PipelineError, ValueError):
    """The generated folder does not satisfy the benchmark contract."""


@dataclass
class EvalResult:
    score: float
    components: sc.ScoreComponents
    score_view: float
    categories: pd.DataFrame
    fps: float
    files: dict[str, Path] = field(default_factory=dict)
    per_item: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per item id


def match_generations(dataset: PhysicsIQDataset, generated_dir: Path) -> tuple[dict[str, Path], list[str]]:
    """item_id -> generated file, plus the problems found (missing/extra/duplicate ids)."""
    problems: list[str] = []
    by_id: dict[str, list[Path]] = {}
    for p in sorted(generated_dir.iterdir()):
        if p.suffix.lower() != ".mp4" or p.name.startswith("."):
            continue
        m = _ID.match(p.name)
        if not m:
            problems.append(f"{p.name}: name does not start with a 4-digit id and '_'")
            continue
        by_id.setdefault(m.group(1), []).append(p)
    expected = [it.item_id for it in dataset.items]
    n_files = sum(len(v) for v in by_id.values())
    if n_files != len(expected):
        problems.append(f"found {n_files} id-prefixed .mp4 files, expected {len(expected)}")
    missing = [i for i in expected if i not in by_id]
    if missing:
        problems.append(
            f"missing ids ({len(missing)}): {', '.join(missing[:20])}" + (" ..." if len(missing) > 20 else "")
        )
    extra = sorted(set(by_id) - set(expected))
    if extra:
        problems.append(f"ids not in the benchmark ({len(extra)}): {', '.join(extra[:20])}")
    for i, paths in by_id.items():
        if len(paths) > 1:
            problems.append(f"id {i} has {len(paths)} files: {', '.join(p.name for p in paths)}")
    return {i: v[0] for i, v in by_id.items() if i in set(expected)}, problems


def _check_file(path: Path) -> tuple[float | None, str | None]:
    """(OpenCV fps, problem) for one generation, from its container alone: no frame is decoded
    here (that would double the decoding cost of the folder). A file whose frames do not decode
    is reported by the metric jobs, with every other such file, before anything is written."""
    try:
        info = probe_video(path)
    except VideoError as exc:
        return None, f"{path.name}: not decodable ({exc})"
    try:
        fps = video_fps(path)
    except VideoError:
        return None, f"{path.name}: not decodable (OpenCV cannot open it or read its fps)"
    if not math.isclose(info.duration, DURATION_S, abs_tol=DURATION_TOL_S):
        return fps, f"{path.name}: duration {info.duration:.4f} s, needs {DURATION_S} ± {DURATION_TOL_S} s"
    if info.num_frames < math.ceil(5 * fps - 1e-9):
        return fps, f"{path.name}: {info.num_frames} frames, needs {math.ceil(5 * fps - 1e-9)} at {fps} fps"
    return fps, None


def validate_submission(
    dataset: PhysicsIQDataset, generated_dir: str | os.PathLike, pool: ProcessPoolExecutor | None = None
) -> tuple[dict[str, Path], float]:
    """Check the whole folder and raise one SubmissionError listing every offending file."""
    generated_dir = Path(generated_dir)
    if not generated_dir.is_dir():
        raise SubmissionError(f"generated folder does not exist: {generated_dir}")
    matched, problems = match_generations(dataset, generated_dir)
    fps_of: dict[str, float] = {}
    paths = [path for _, path in sorted(matched.items())]
    checks = pool.map(_check_file, paths, chunksize=8) if pool is not None else map(_check_file, paths)
    for path, (fps, problem) in zip(paths, checks):
        if problem:
            problems.append(problem)
        if fps is not None:
            fps_of[path.name] = fps
    rates = sorted(set(fps_of.values()))
    if len(rates) > 1:  # exact equality, as the official check
        groups = {r: [n for n, f in fps_of.items() if f == r] for r in rates}
        problems.append(
            "fps differs between files: "
            + "; ".join(f"{r:g} fps: {', '.join(ns[:5])}{' ...' if len(ns) > 5 else ''}" for r, ns in groups.items())
        )
    if problems:
        raise SubmissionError(
            f"invalid Physics-IQ submission in {generated_dir} "
            f"({len(problems)} problem(s)):\n  " + "\n  ".join(problems)
        )
    return matched, rates[0]


def _job(args: tuple) -> tuple[str, str, dict | None, str | None]:
    """Worker: grid clips (ground truth cached) and metrics of one (scenario, view), or the
    problem that stopped them (so one bad file does not hide the others)."""
    scenario, view, take1, take2, gen, shipped1, shipped2, cache_dir, fps = args
    try:
        gt = GroundTruthCache(cache_dir)
        width, height = gt.frame_size(take1)
        grid = (width // 4, height // 4)
        if min(grid) < 1:
            raise VideoError(f"{take1}: too small for the //4 evaluation grid")
        limit = window(fps)
        c1, c2 = gt.get(take1, grid, limit, shipped1), gt.get(take2, grid, limit, shipped2)
        if len(c1) != len(c2):
            raise VideoError(f"take-1 has {len(c1)} frames in the window, take-2 {len(c2)} ({take1}, {take2})")
        cg = build_grid_clip(gen, grid, limit, mask_cache=MaskCache(cache_dir))
        return scenario, view, clip_metrics(c1, c2, cg, names=(take1, take2, gen), variance=gt.variance(c1, c2)), None
    except VideoError as exc:
        return scenario, view, None, f"{scenario} {view}: {exc}"


def evaluate_folder(
    dataset_root: str | os.PathLike,
    generated_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    fps: float | None = None,
    descriptions: str | os.PathLike | None = None,
    workers: int = 1,
    mask_cache: str | os.PathLike | None = None,
    use_shipped_masks: bool = True,
    model_name: str | None = None,
    item_ids: list[str] | None = None,
    extra: dict | None = None,
) -> EvalResult:
    """Score one model folder. Writes <model>.csv (official 37 columns), <model>_metrics.json,
    <model>_categories.csv and <model>_categories.png into ``output_dir``.

    ``item_ids`` restricts the benchmark to a subset of whole scenarios (smoke runs); the score
    is then the official formula over that subset. ``extra`` is recorded in the JSON."""
    dataset = PhysicsIQDataset(dataset_root, descriptions)
    if item_ids is not None:
        dataset.restrict(item_ids)
    generated_dir = Path(generated_dir)
    pool = ProcessPoolExecutor(max_workers=workers, initializer=use_one_decoder_thread) if workers > 1 else None
    try:
        return _evaluate(
            dataset, generated_dir, output_dir, fps, pool, mask_cache, use_shipped_masks, model_name, extra
        )
    finally:
        if pool is not None:
            pool.shutdown()


def _evaluate(
    dataset, generated_dir, output_dir, fps, pool, mask_cache, use_shipped_masks, model_name, extra
) -> EvalResult:
    matched, gen_fps = validate_submission(dataset, generated_dir, pool)
    if fps is not None and fps != gen_fps:
        raise SubmissionError(f"generations are {gen_fps:g} fps but fps={fps:g} was requested")
    fps = gen_fps
    dataset.validate(fps)
    ensure_testing_clips(dataset, fps)
    cache_dir = Path(mask_cache) if mask_cache else dataset.cache_dir / "masks"

    jobs = []
    for it in dataset.items:
        # shipped real masks are used as they are, like the official driver
        shipped = [dataset.real_mask(it, fps, t) for t in (1, 2)] if use_shipped_masks else [None, None]
        shipped = [p if p is not None and p.is_file() else None for p in shipped]
        jobs.append(
            (
                it.scenario,
                it.view,
                dataset.testing_clip(it, fps, 1),
                dataset.testing_clip(it, fps, 2),
                matched[it.item_id],
                shipped[0],
                shipped[1],
                cache_dir,
                fps,
            )
        )
    results = list(pool.map(_job, jobs)) if pool is not None else [_job(j) for j in jobs]
    failed = [problem for *_, problem in results if problem]
    if failed:
        raise SubmissionError(
            f"{len(failed)} of {len(results)} videos could not be evaluated "
            f"(nothing was written):\n  " + "\n  ".join(failed)
        )

    rows: dict[str, dict] = {s: {"scenario": s} for s in dataset.scenarios}
    for scenario, view, metrics, _ in results:
        assert metrics is not None  # failures were reported above
        rows[scenario].update({f"{k}_{view}": v for k, v in metrics.items()})
    incomplete = [s for s, r in rows.items() if len(r) != len(sc.CSV_COLUMNS)]
    if incomplete:
        raise ValueError(f"scenarios without all three views {VIEWS}: {incomplete[:5]}")

    name = model_name or generated_dir.resolve().name
    output_dir = Path(output_dir)
    files = {"csv": sc.write_results_csv(sc.rows_to_frame(list(rows.values())), output_dir / f"{name}.csv")}
    table = sc.read_results_csv(files["csv"])  # score what was written, with the official rounding
    components = sc.physics_iq_score(table)
    view_score = sc.per_view_score(table)
    categories = sc.category_table(table, {it.scenario: it.category for it in dataset.items})
    files["categories_csv"] = output_dir / f"{name}_categories.csv"
    categories.to_csv(files["categories_csv"], index=False)
    files["json"] = sc.write_score_json(
        output_dir / f"{name}_metrics.json",
        components,
        view_score,
        categories,
        {"model": name, "fps": fps, "n_items": len(dataset), **(extra or {})},
    )
    files["plot"] = sc.plot_categories(
        output_dir / f"{name}_categories.png", categories, components.score, f"{name} @ {fps:g} fps"
    )
    return EvalResult(
        components.score, components, view_score, categories, fps, files, per_item_metrics(table, dataset)
    )


def per_item_metrics(table: pd.DataFrame, dataset: PhysicsIQDataset) -> pd.DataFrame:
    """The model-side metrics of each item (one scenario, one view) from the results table."""
    by_scenario = table.set_index("scenario")
    rows = []
    for it in dataset.items:
        row = by_scenario.loc[it.scenario]
        st, mse = row[f"spatiotemporal_iou_v1_{it.view}"], row[f"v1_mse_{it.view}"]
        rows.append(
            {
                "item_id": it.item_id,
                "spatiotemporal_iou": sum(st) / len(st),
                "spatial_iou": float(row[f"spatial_iou_v1_{it.view}"]),
                "weighted_spatial_iou": float(row[f"weighted_spatial_iou_v1_{it.view}"]),
                "mse": sum(mse) / len(mse),
            }
        )
    return pd.DataFrame(rows)
