"""wandb: one run per run folder (a point of a sweep), offline unless the config says otherwise.

The run's ``group`` is its sweep and its ``job_type`` the search strategy, so a sweep's points sit
together and strategies filter apart; its config is the run's config flattened to dotted keys with
the run key; its summary the scores (Original and Verified formula, with components), the mean
chosen surprise and the compute totals; its ``items`` table one row per item with the condition
image, the chosen video and the candidates' surprises. The wandb run id is derived from the run
key, so re-reporting a run updates the same wandb run instead of adding a duplicate next to it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.fields import dotted


@dataclass
class WandbRun:
    """Who the wandb run is and where it is filed."""

    experiment: str
    run_key: str
    group: str | None  # the sweep
    job_type: str  # the search strategy


def flat_config(config: dict[str, Any], run_key: str) -> dict[str, Any]:
    return {"run_key": run_key, **dotted(config)}


def log_to_wandb(
    wcfg,
    run_dir: Path,
    who: WandbRun,
    config: dict[str, Any],
    table: pd.DataFrame,
    media: dict[str, Any],
    summary: dict[str, Any],
    images: dict[str, Path],
) -> dict[str, Any] | None:
    """Log the run; returns what wandb filed it as: its folder (what ``wandb sync`` publishes),
    id, group and job type, read back from wandb's run."""
    if wcfg.mode == "disabled":
        return None
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    # The table's media are staged as an artifact under wandb's data folder: inside the run folder,
    # an offline run carries everything ``wandb sync`` uploads (not the user's home).
    previous = os.environ.get("WANDB_DATA_DIR")
    os.environ["WANDB_DATA_DIR"] = str(Path(run_dir) / "wandb" / "data")
    try:
        return _log(wandb, wcfg, run_dir, who, config, table, media, summary, images)
    finally:
        if previous is None:
            os.environ.pop("WANDB_DATA_DIR", None)
        else:
            os.environ["WANDB_DATA_DIR"] = previous


def _log(wandb, wcfg, run_dir, who, config, table, media, summary, images) -> dict[str, Any]:
    run = wandb.init(
        project=wcfg.project,
        entity=wcfg.entity,
        tags=list(wcfg.tags),
        mode=wcfg.mode,
        dir=str(run_dir),
        name=f"{who.experiment}-{who.run_key}",
        id=f"{who.experiment}-{who.run_key}",
        group=who.group,
        job_type=who.job_type,
        resume="allow",
        config=flat_config(config, who.run_key),
        reinit="finish_previous",
        settings=wandb.Settings(console="off", x_disable_stats=True),
    )
    try:
        run.log({"items": items_table(wandb, table, media)})
        for name, path in images.items():
            run.log({name: wandb.Image(str(path))})
        for key, value in summary.items():
            run.summary[key] = value
        return {"dir": str(Path(run.dir).parent), "id": run.id, "group": run.group, "job_type": run.job_type}
    finally:
        run.finish()


def items_table(wandb: Any, table: pd.DataFrame, media: dict[str, Any]):
    """One row per item: ids, prompt, the condition image, the chosen (submitted) video, the
    candidates' surprises and the item's metrics."""
    columns = [
        "item_id",
        "category",
        "prompt",
        "condition",
        "chosen_video",
        "chosen_seed",
        "chosen_surprise",
        "surprises",
        "spatiotemporal_iou",
        "spatial_iou",
        "weighted_spatial_iou",
        "mse",
    ]
    rows = []
    for r in table.to_dict("records"):
        m = media.get(r["item_id"])
        condition = wandb.Image(str(m.condition)) if m is not None and m.condition else None
        chosen = wandb.Video(str(m.submitted), format="mp4") if m is not None and m.submitted else None
        surprises = ", ".join("nan" if s != s else f"{s:.4f}" for s in r["surprises"])
        rows.append(
            [
                r["item_id"],
                r["category"],
                r["prompt"],
                condition,
                chosen,
                r["chosen_seed"],
                r["chosen_surprise"],
                surprises,
                r.get("spatiotemporal_iou"),
                r.get("spatial_iou"),
                r.get("weighted_spatial_iou"),
                r.get("mse"),
            ]
        )
    return wandb.Table(columns=columns, data=rows)


def sync_command(logged: dict[str, Any] | None, mode: str) -> str | None:
    """The exact command that publishes an offline run (None for online or disabled runs)."""
    if logged is None or mode != "offline":
        return None
    return f"wandb sync {logged['dir']}"
