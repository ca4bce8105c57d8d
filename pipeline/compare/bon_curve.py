"""The best-of-N curve from one pool of N candidates per item (a best-of-N run).

Every candidate is conformed and evaluated once, the k-th candidates of all items in one folder,
with the Physics-IQ evaluator. A point (n, draw) picks n of the N candidates of each item without
replacement, seeded by ``(seed, n, draw)``, chooses the lowest surprise exactly as select does, and
scores that choice with the evaluator's own arithmetic over the rows of the chosen candidates'
results tables. So n = N reproduces the run's own score to the last digit, and the error bars are
the spread over draws of which n candidates an item had.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import PipelineError

from .runs import FinishedRun


@dataclass
class CandidatePool:
    """The evaluated candidates of one run: results table per candidate index, and per item its
    (scenario, view) and its scored candidates in index order."""

    tables: list[pd.DataFrame]
    items: dict[str, tuple[str, str]]
    scored: dict[str, list[dict]]

    @property
    def size(self) -> int:
        return len(self.tables)


def curve_sizes(pool_size: int) -> list[int]:
    """1, 2, 4, ... up to the pool's N, and N itself."""
    sizes = [2**i for i in range(pool_size.bit_length()) if 2**i <= pool_size]
    return sizes + ([pool_size] if sizes[-1] != pool_size else [])


def evaluate_candidates(run: FinishedRun, out: Path, workers: int = 1) -> CandidatePool:
    """Conform and evaluate every candidate of ``run`` (kept in ``out`` and reused while the
    candidates' digests are the same)."""
    from pipeline.benchmarks.physicsiq.contract import conform_frames, write_submission_video
    from pipeline.benchmarks.physicsiq.evaluator import evaluate_folder
    from pipeline.benchmarks.physicsiq.iq_score import read_results_csv
    from pipeline.files import atomic_write_text
    from pipeline.items import Manifest
    from pipeline.store import RunStore
    from pipeline.video_io import read_video

    cfg = run.cfg
    if getattr(cfg.search, "name", None) != "best_of_n":
        raise PipelineError(
            f"bon_run={run.run_dir}: search={cfg.search.name} makes dependent candidates; the best-of-N "
            "curve needs a best-of-N run (independent seeds)"
        )
    store = RunStore(run.run_dir)
    manifest = Manifest.load(store)
    samples = {it.item_id: store.require("sample", it.item_id) for it in manifest.items}
    size = min(len(rec.outputs) for rec in samples.values())
    fps = cfg.generator.fps
    tables = []
    for k in range(size):
        name = f"cand{k:02d}"
        folder, results = out / name / "videos", out / name / "results"
        sources = {i: rec.files[name]["sha256"] for i, rec in samples.items()}
        stamp = out / name / "sources.json"
        fresh = stamp.exists() and json.loads(stamp.read_text()) == {"sources": sources, "conform": _conform(cfg)}
        if not fresh or not (results / f"{name}.csv").exists():
            for item in manifest.items:
                frames, _ = read_video(store.path(samples[item.item_id].outputs[name]))
                frames = conform_frames(frames, fps, drop_first=cfg.conform.drop_first_frame)
                write_submission_video(folder / item.submission_name, frames, fps)
            evaluate_folder(
                cfg.benchmark.root,
                folder,
                results,
                fps=fps,
                descriptions=cfg.benchmark.descriptions,
                workers=workers,
                mask_cache=cfg.evaluate.mask_cache,
                item_ids=manifest.ids(),
                model_name=name,
            )
            atomic_write_text(stamp, json.dumps({"sources": sources, "conform": _conform(cfg)}))
        tables.append(read_results_csv(results / f"{name}.csv"))
    scored = {}
    for item_id, sample in samples.items():
        record = store.require("score", item_id)
        if record.inputs.get("sample") != sample.digest:
            raise PipelineError(
                f"run={run.run_dir}: the score of item {item_id} is not of its candidates (resume the run)"
            )
        scored[item_id] = record.data["candidates"][:size]
    return CandidatePool(tables, {it.item_id: (it.scenario, it.view) for it in manifest.items}, scored)


def _conform(cfg) -> dict:
    return {"drop_first_frame": cfg.conform.drop_first_frame, "fps": cfg.generator.fps}


def chosen_table(pool: CandidatePool, choice: dict[str, int]) -> pd.DataFrame:
    """The results table of a selection: each (scenario, view)'s columns from its chosen candidate."""
    from pipeline.benchmarks.physicsiq.iq_score import METRIC_STEMS

    base = pool.tables[0]
    out = base.copy()
    row = {s: r for r, s in enumerate(base["scenario"])}
    for item, k in choice.items():
        scenario, view = pool.items[item]
        source = pool.tables[k]
        for stem in METRIC_STEMS:
            col = f"{stem}_{view}"
            out.at[row[scenario], col] = source.at[row[scenario], col]
    return out


def choose(pool: CandidatePool, n: int, rng: np.random.Generator) -> tuple[dict[str, int], int]:
    """For each item, n of its candidates at random, and the one select would take of them; an
    item none of whose picked candidates has a finite surprise submits its first picked one (a
    submission needs a video), counted in the second value."""
    from pipeline.stages.select import argmin_surprise

    choice, unscored = {}, 0
    for item, candidates in pool.scored.items():
        picked = sorted(rng.choice(pool.size, size=n, replace=False).tolist())
        try:
            best, _ = argmin_surprise([candidates[k] for k in picked])
            choice[item] = int(best["name"].removeprefix("cand"))
        except ValueError:
            choice[item], unscored = picked[0], unscored + 1
    return choice, unscored


def bon_curve(pool: CandidatePool, draws: int = 100, seed: int = 0) -> pd.DataFrame:
    """One row per (n, draw): the Original score and the Verified formula's (×100). n = N has
    one draw (every draw is the same)."""
    from pipeline.benchmarks.physicsiq.iq_score import physics_iq_score
    from pipeline.benchmarks.physicsiq.verified import run_scores

    rows = []
    for n in curve_sizes(pool.size):
        for d in range(draws if n < pool.size else 1):
            choice, unscored = choose(pool, n, np.random.default_rng([seed, n, d]))
            table = chosen_table(pool, choice)
            rows.append(
                {
                    "n": n,
                    "draw": d,
                    "items_without_a_finite_surprise": unscored,
                    "physics_iq_original": physics_iq_score(table).score,
                    "physics_iq_verified_formula": 100 * run_scores(table)["physiq"],
                }
            )
    return pd.DataFrame(rows)


def curve_summary(curve: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over draws per n (ddof 1; 0 where there is one draw)."""
    grouped = curve.groupby("n")
    out = grouped[["physics_iq_original", "physics_iq_verified_formula"]].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out = out.fillna(0.0).reset_index()
    out["draws"] = grouped.size().to_numpy()
    return out
