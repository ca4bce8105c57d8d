"""Aggregation against hand-made official CSVs (the score of google-deepmind/physics-IQ-benchmark: code/calculate_iq_score.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.benchmarks.physicsiq.iq_score import CSV_COLUMNS, per_view_score, physics_iq_score, read_results_csv
from pipeline.benchmarks.physicsiq.layout import VIEWS


def _csv(tmp_path, st, s, ws, mse, st_v, s_v, ws_v, mse_v, frames=4):
    rows = []
    for i in range(3):
        row = {"scenario": f"trimmed-s{i}.mp4"}
        for v in VIEWS:
            row.update(
                {
                    f"v1_mse_{v}": str([mse] * frames),
                    f"v2_mse_{v}": str([mse] * frames),
                    f"variance_spatial_{v}": s_v,
                    f"variance_weighted_spatial_{v}": ws_v,
                    f"variance_spatiotemporal_iou_{v}": str([st_v] * frames),
                    f"variance_mse_{v}": str([mse_v] * frames),
                    f"spatiotemporal_iou_v1_{v}": str([st] * frames),
                    f"spatiotemporal_iou_v2_{v}": str([st] * frames),
                    f"spatial_iou_v1_{v}": s,
                    f"spatial_iou_v2_{v}": s,
                    f"weighted_spatial_iou_v1_{v}": ws,
                    f"weighted_spatial_iou_v2_{v}": ws,
                }
            )
        rows.append(row)
    path = tmp_path / "model.csv"
    pd.DataFrame(rows)[CSV_COLUMNS].to_csv(path, index=False)
    return read_results_csv(path)


@pytest.mark.parametrize(
    "values, expected",
    [
        ((0.4, 0.5, 0.6, 0.1, 0.3, 0.25, 0.5, 0.05), 100.0),
        ((0.2, 0.3, 0.25, 0.012, 0.535, 0.678, 0.577, 0.002), 40.65),
        ((0.212345, 0.3, 0.25, 0.0123456, 0.53456, 0.678912, 0.57749, 0.0021), 41.38),
    ],
)
def test_official_vectors(tmp_path, values, expected):
    comp = physics_iq_score(_csv(tmp_path, *values))
    assert comp.score == expected


def test_rounding_of_components(tmp_path):
    comp = physics_iq_score(_csv(tmp_path, 0.212345, 0.3, 0.25, 0.0123456, 0.53456, 0.678912, 0.57749, 0.0021))
    assert comp.spatiotemporal_iou == pytest.approx(0.2123)  # lists rounded to 4 d.p. when read
    assert comp.var_spatiotemporal_iou == 0.5346 and comp.var_spatial_iou == 0.67891
    assert comp.var_weighted_spatial_iou == 0.5775 and comp.mse == pytest.approx(0.0123)


def test_per_view_score_clips_each_ratio(tmp_path):
    df = _csv(tmp_path, 0.4, 0.5, 0.6, 0.1, 0.3, 0.25, 0.5, 0.05)
    # IoU ratios > 1 clip to 1; MSE ratio (0.05/0.1) = 0.5 -> mean (1+1+1+0.5)/4
    assert per_view_score(df) == pytest.approx(87.5, abs=1e-4)
