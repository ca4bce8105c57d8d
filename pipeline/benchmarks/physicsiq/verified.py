"""Physics-IQ Verified numbers (the recommended leaderboard): one run's score and components from
its official results table, and the leaderboard's aggregate over repeated runs.

Per run: the score is the mean over the (scenario, view) samples of the mean of four ratios to
the physical variance, each clipped to [0, 1] (``iq_score.view_score_table``); each component is
the mean of its own clipped ratio. Over runs (google-deepmind/physics-IQ-benchmark, the Verified
aggregation): mean and sample standard deviation (ddof 1) of each, times 100; one run has no
standard deviation (NaN). Some entries instead report the spread over samples of one run,
std / sqrt(samples): it is computed too, under its own name, never in place of the other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .iq_score import view_score_table

# the card's names -> the columns of view_score_table
FIELDS = {
    "physiq": "score",
    "spatial_iou": "spatial",
    "weighted_spatial_iou": "weighted_spatial",
    "spatiotemporal_iou": "spatiotemporal",
    "mse": "mse",
}


def run_scores(table: pd.DataFrame) -> dict[str, float]:
    """One run's Verified score and components (fractions in [0, 1]) from its results table, with
    the number of samples and the standard error of the score over them."""
    views = view_score_table(table)
    out = {name: float(views[col].mean()) for name, col in FIELDS.items()}
    out["samples"] = len(views)
    out["physiq_sem_over_samples"] = float(views["score"].std(ddof=1) / math.sqrt(len(views)))
    return out


def aggregate(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """``<field>_mean`` and ``<field>_std`` (percent) over runs for every field of :data:`FIELDS`,
    and ``physiq_sem_over_samples`` (percent; the mean over runs of each run's own)."""
    if not runs:
        raise ValueError("no runs to aggregate")
    out: dict[str, float] = {}
    for name in FIELDS:
        values = np.array([r[name] for r in runs], dtype=float) * 100
        out[f"{name}_mean"] = float(values.mean())
        out[f"{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    out["physiq_sem_over_samples"] = float(np.mean([r["physiq_sem_over_samples"] for r in runs]) * 100)
    out["runs"] = len(runs)
    return out


def describe(agg: dict[str, float]) -> str:
    """``Physics-IQ Verified 48.4 ± 1.1 (mean ± std over 4 runs; std over samples / sqrt(198): 0.9)``."""
    spread = "no std: one run" if agg["runs"] == 1 else f"mean ± std over {agg['runs']} runs"
    std = "" if agg["runs"] == 1 else f" ± {agg['physiq_std']:.1f}"
    return (
        f"Physics-IQ Verified {agg['physiq_mean']:.1f}{std} ({spread}); "
        f"std over samples / sqrt(n), named apart: {agg['physiq_sem_over_samples']:.1f}"
    )
