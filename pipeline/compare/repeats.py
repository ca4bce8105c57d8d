"""Repeated runs: runs that differ only in their seeds are one setting measured several times, and
are reported the leaderboard's way (mean ± sample std over runs, ddof 1, × 100, for the Verified
score and its four components), with the spread over samples of one run named apart."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .runs import FinishedRun


def seed_only(settings: Sequence[str]) -> bool:
    """Whether the differing settings are all seeds (``search.base_seed``, ...)."""
    return bool(settings) and all(key.rsplit(".", 1)[-1].endswith("seed") for key in settings)


def repeat_aggregate(runs: Sequence[FinishedRun], settings: Sequence[str]) -> dict[str, float] | None:
    """The aggregate over ``runs`` when they are repeats of one setting, else None."""
    from pipeline.benchmarks.physicsiq.verified import aggregate

    if len(runs) < 2 or not seed_only(settings):
        return None
    out = aggregate([run.verified for run in runs])
    original = np.array([run.summary["physics_iq_score"] for run in runs], dtype=float)
    out["original_mean"] = float(original.mean())
    out["original_std"] = float(original.std(ddof=1))
    return out


def describe_repeats(agg: dict[str, float]) -> list[str]:
    from pipeline.benchmarks.physicsiq.verified import FIELDS, describe

    lines = [describe(agg)]
    lines += [f"  {name:<22}{agg[f'{name}_mean']:>8.2f} ± {agg[f'{name}_std']:.2f}" for name in FIELDS]
    lines.append(
        f"Physics-IQ score (Original formula): {agg['original_mean']:.2f} ± {agg['original_std']:.2f} "
        f"(mean ± std over {agg['runs']} runs)"
    )
    return lines
