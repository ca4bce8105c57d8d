"""wandb: one run per experiment run folder, offline unless the config says otherwise.

The wandb run id is derived from the run key, so re-reporting a run updates the same wandb run
instead of adding a duplicate next to it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd


def log_to_wandb(
    wcfg,
    run_dir: Path,
    experiment: str,
    run_key: str,
    config: dict[str, Any],
    table: pd.DataFrame,
    summary: dict[str, Any],
    images: dict[str, Path],
) -> str | None:
    """Log the resolved config, the per-item table, summary scores and plots; returns the run dir."""
    if wcfg.mode == "disabled":
        return None
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    run = wandb.init(
        project=wcfg.project,
        entity=wcfg.entity,
        tags=list(wcfg.tags),
        mode=wcfg.mode,
        dir=str(run_dir),
        name=f"{experiment}-{run_key}",
        id=f"{experiment}-{run_key}",
        resume="allow",
        config=config,
        reinit="finish_previous",
        settings=wandb.Settings(console="off", x_disable_stats=True),
    )
    try:
        run.log({"items": wandb.Table(dataframe=_wandb_safe(table))})
        for name, path in images.items():
            run.log({name: wandb.Image(str(path))})
        for key, value in summary.items():
            run.summary[key] = value
        return str(Path(run.dir).parent)
    finally:
        run.finish()


def _wandb_safe(df: pd.DataFrame) -> pd.DataFrame:
    # wandb tables take scalars: lists (candidate surprises) become readable strings.
    out = df.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, (list, tuple))).any():
            out[col] = out[col].map(lambda v: ", ".join(f"{x:.4f}" if isinstance(x, float) else str(x) for x in v))
    return out
