"""The finished runs a comparison reads, and the table with one row per run: the settings that
differ between them, the scores (Original and the Verified formula, with their components) and
the compute each spent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import PipelineError

# the settings a row never shows: they name runs rather than tell them apart
HIDDEN = ("name",)


@dataclass
class FinishedRun:
    run_dir: Path
    cfg: Any  # pipeline.config.Config
    settings: dict[str, Any]  # flattened result-affecting fields, dotted keys
    summary: dict[str, Any]  # results/summary.json
    items: pd.DataFrame  # results/items.parquet
    evaluation: dict[str, Any]  # the evaluate record's data
    verified: dict[str, float]  # the Verified formula's score and components (fractions)
    samples: pd.DataFrame  # per (scenario, view): the Verified formula's clipped ratios and score

    @property
    def label(self) -> str:
        return f"{self.run_dir.parent.name}/{self.run_dir.name}"


def read_run(run_dir: str | Path) -> FinishedRun:
    """A run whose report has finished, or a PipelineError saying what it lacks."""
    import json

    from pipeline.benchmarks.physicsiq.iq_score import read_results_csv, view_score_table
    from pipeline.benchmarks.physicsiq.verified import run_scores
    from pipeline.config import load_run_config
    from pipeline.fields import dotted, result_fields
    from pipeline.stages.base import ALL
    from pipeline.store import RunStore

    run_dir = Path(run_dir)
    _, cfg = load_run_config(run_dir)
    store = RunStore(run_dir)
    report, evaluated = store.read("report", ALL), store.read("evaluate", ALL)
    if report is None or not report.done or evaluated is None or not evaluated.done:
        raise PipelineError(f"run={run_dir}: not finished (python -m pipeline resume run={run_dir})")
    results = run_dir / "results"
    table = read_results_csv(store.path(evaluated.outputs["csv"]))
    return FinishedRun(
        run_dir=run_dir,
        cfg=cfg,
        settings=dotted(result_fields(cfg)),
        summary=json.loads((results / "summary.json").read_text()),
        items=pd.read_parquet(results / "items.parquet"),
        evaluation=evaluated.data,
        verified=run_scores(table),
        samples=view_score_table(table),
    )


def differing(runs: Sequence[FinishedRun]) -> list[str]:
    """The settings whose values are not the same in every run, in config order."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.settings if k not in keys]
    return [k for k in keys if k not in HIDDEN and len({repr(run.settings.get(k, "(unset)")) for run in runs}) > 1]


def comparison_table(runs: Sequence[FinishedRun]) -> pd.DataFrame:
    """One row per run: the differing settings, the scores, the compute."""
    if len({run.run_dir.resolve() for run in runs}) != len(runs):
        raise PipelineError("the same run is listed twice")
    keys = differing(runs)
    rows = []
    for run in runs:
        s, comp = run.summary, run.evaluation["components"]
        rows.append(
            {
                "run": run.label,
                **{k: _cell(run.settings.get(k)) for k in keys},
                "physics_iq_original": s["physics_iq_score"],
                "physics_iq_verified_formula": 100 * run.verified["physiq"],
                **{
                    f"original/{k}": comp[k]
                    for k in ("spatiotemporal_iou", "spatial_iou", "weighted_spatial_iou", "mse")
                },
                **{
                    f"verified/{k}": 100 * run.verified[k]
                    for k in ("spatiotemporal_iou", "spatial_iou", "weighted_spatial_iou", "mse")
                },
                "surprise_chosen_mean": s["surprise/chosen_mean"],
                "candidates_per_item": s["candidates_per_item"],
                "nfe": s.get("compute/nfe", 0),
                "reward_forwards": s.get("compute/reward_forwards", 0),
                "reward_backwards": s.get("compute/reward_backwards", 0),
                "seconds": round(sum(v for k, v in s.items() if k.startswith("compute/seconds/") and "." not in k), 3),
                "items": s["items"],
            }
        )
    table = pd.DataFrame(rows)
    for key in keys:  # one type per column (parquet): numbers stay numbers, anything mixed is text
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in table[key]):
            table[key] = table[key].map(str)
    return table


def _cell(value: Any) -> Any:
    """A parquet-friendly cell: lists and dicts as their text."""
    return value if isinstance(value, (str, int, float, bool)) or value is None else repr(value)
