"""Physics-IQ aggregation (google-deepmind/physics-IQ-benchmark: code/calculate_iq_score.py) from the official per-model CSV.

The score is computed from the CSV *as read back* because the official reader rounds every
list element to 4 decimals; the variance terms are rounded (4/5 decimals) before the ratios.
The pandas operations are the ones whose floating-point order the official numbers depend on
(e.g. object-dtype ``explode().mean()`` sums sequentially).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.files import atomic_path

from .layout import VIEWS

METRIC_STEMS = (
    "v1_mse",
    "v2_mse",
    "variance_spatial",
    "variance_weighted_spatial",
    "variance_spatiotemporal_iou",
    "variance_mse",
    "spatiotemporal_iou_v1",
    "spatiotemporal_iou_v2",
    "spatial_iou_v1",
    "spatial_iou_v2",
    "weighted_spatial_iou_v1",
    "weighted_spatial_iou_v2",
)
LIST_STEMS = (
    "v1_mse",
    "v2_mse",
    "variance_spatiotemporal_iou",
    "variance_mse",
    "spatiotemporal_iou_v1",
    "spatiotemporal_iou_v2",
)
CSV_COLUMNS = ["scenario"] + [f"{stem}_{view}" for view in VIEWS for stem in METRIC_STEMS]
_FLOAT = re.compile(r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?")
RATIO_EPS = 1e-8  # the Verified score's guard against division by zero


@dataclass(frozen=True)
class ScoreComponents:
    score: float  # the leaderboard number: round(clip(100·raw, 0, 100), 2)
    raw: float  # unclipped, ×1 (not ×100)
    spatiotemporal_iou: float
    spatial_iou: float
    weighted_spatial_iou: float
    mse: float
    var_spatiotemporal_iou: float  # rounded to 4 decimals, as used in the ratio
    var_spatial_iou: float  # rounded to 5 decimals
    var_weighted_spatial_iou: float
    var_mse: float
    physical_variance_all: float  # ST* + S* + WS* − MSE*, rounded to 4 (reported upstream)
    n_scenarios: int


# --- CSV ----------------------------------------------------------------------------------------
def rows_to_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows of {'scenario', '<stem>_<view>': value} -> DataFrame in the official column order."""
    df = pd.DataFrame(rows)
    missing = [c for c in CSV_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"metrics rows lack columns {missing[:6]}")
    for col in df.columns:
        if col.rsplit("_perspective-", 1)[0] in LIST_STEMS:
            df[col] = df[col].apply(lambda xs: [float(x) for x in xs])
    return df[CSV_COLUMNS]


def write_results_csv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)  # lists become their Python repr, like the official writer
    return path


def parse_float_list(value) -> list[float]:
    """List cell -> floats rounded to 4 decimals (the official reader's rounding)."""
    if isinstance(value, str):
        if not (value.startswith("[") and value.endswith("]")):
            raise ValueError(f"not a list of floats: {value[:40]!r}")
        values = [float(x) for x in _FLOAT.findall(value)]
    else:
        values = [float(x) for x in value]
    if not values:
        raise ValueError("empty list of floats")
    return [round(x, 4) for x in values]


def read_results_csv(path: str | os.PathLike) -> pd.DataFrame:
    df = pd.read_csv(path)
    missing = [c for c in CSV_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a Physics-IQ results CSV, missing {missing[:6]}")
    for view in VIEWS:
        for stem in LIST_STEMS:
            df[f"{stem}_{view}"] = df[f"{stem}_{view}"].apply(parse_float_list)
    return df


# --- official score ---------------------------------------------------------------------------
def _cols(stem: str) -> list[str]:
    return [f"{stem}_{view}" for view in VIEWS]


def _row_frame_mean(df: pd.DataFrame, stem: str) -> float:
    # mean over scenarios of (mean of the 3·T concatenated frame values of that scenario)
    return df.apply(lambda row: np.mean(np.concatenate([row[c] for c in _cols(stem)])), axis=1).mean()


def _variance_frame_mean(df: pd.DataFrame, stem: str) -> float:
    # per view, mean over all frames of all scenarios; then mean over views
    return np.mean([df[c].explode().mean() for c in _cols(stem)])


def physics_iq_score(df: pd.DataFrame) -> ScoreComponents:
    """The original Physics-IQ score of a parsed results table (see read_results_csv)."""
    st = _row_frame_mean(df, "spatiotemporal_iou_v1")
    mse = _row_frame_mean(df, "v1_mse")
    s = df[_cols("spatial_iou_v1")].mean().mean()
    ws = df[_cols("weighted_spatial_iou_v1")].mean().mean()
    st_v = round(_variance_frame_mean(df, "variance_spatiotemporal_iou"), 4)
    mse_v = round(_variance_frame_mean(df, "variance_mse"), 4)
    s_v = round(np.mean([df[c].mean() for c in _cols("variance_spatial")]), 5)
    ws_v = round(np.mean([df[c].mean() for c in _cols("variance_weighted_spatial")]), 4)
    if min(st_v, s_v, ws_v) <= 0:
        raise ValueError(
            f"physical variance is zero (ST*={st_v}, S*={s_v}, WS*={ws_v}); "
            "the take-1/take-2 clips show no common motion"
        )
    raw = (st / st_v + s / s_v + ws / ws_v) / 3 - (mse - mse_v)
    score = round(max(min(raw * 100, 100.0), 0.0), 2)
    return ScoreComponents(
        score=float(score),
        raw=float(raw),
        spatiotemporal_iou=float(st),
        spatial_iou=float(s),
        weighted_spatial_iou=float(ws),
        mse=float(mse),
        var_spatiotemporal_iou=float(st_v),
        var_spatial_iou=float(s_v),
        var_weighted_spatial_iou=float(ws_v),
        var_mse=float(mse_v),
        physical_variance_all=float(round(st_v + s_v + ws_v - mse_v, 4)),
        n_scenarios=len(df),
    )


# --- per-view ("Verified"-style) score ------------------------------------------------------------
def view_score_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (scenario, view): the four clipped ratios and their mean (§3.8)."""
    rows = []
    for _, row in df.iterrows():
        for view in VIEWS:
            st = np.mean(row[f"spatiotemporal_iou_v1_{view}"])
            st_v = np.mean(row[f"variance_spatiotemporal_iou_{view}"])
            mse = np.mean(row[f"v1_mse_{view}"])
            mse_v = np.mean(row[f"variance_mse_{view}"])
            with np.errstate(divide="ignore"):
                r_mse = np.float64(mse / (mse_v + RATIO_EPS)) ** -1  # MSE 0 -> inf -> clipped to 1
            ratios = {
                "spatiotemporal": st / (st_v + RATIO_EPS),
                "spatial": row[f"spatial_iou_v1_{view}"] / (row[f"variance_spatial_{view}"] + RATIO_EPS),
                "weighted_spatial": row[f"weighted_spatial_iou_v1_{view}"]
                / (row[f"variance_weighted_spatial_{view}"] + RATIO_EPS),
                "mse": r_mse,
            }
            clipped = {k: float(np.clip(v, 0.0, 1.0)) for k, v in ratios.items()}
            rows.append(
                {"scenario": row["scenario"], "view": view, **clipped, "score": float(np.mean(list(clipped.values())))}
            )
    return pd.DataFrame(rows)


def per_view_score(df: pd.DataFrame) -> float:
    """final_score_view ×100 (not rounded): mean over (scenario, view) of the clipped-ratio means."""
    return float(view_score_table(df)["score"].mean() * 100)


# --- categories and outputs -------------------------------------------------------------------
def category_table(df: pd.DataFrame, categories: dict[str, str]) -> pd.DataFrame:
    """Per category: the official formula applied to that category's scenarios alone (its own
    physical variance), the per-view score, and the raw metric means."""
    cats = df["scenario"].map(categories)
    if cats.isna().any():
        raise ValueError(f"no category for scenarios {list(df['scenario'][cats.isna()])[:5]}")
    out = []
    for cat in sorted(cats.unique()):
        sub = df[cats == cat].reset_index(drop=True)
        try:
            comp = physics_iq_score(sub)
            fields = {
                "score": comp.score,
                "spatiotemporal_iou": comp.spatiotemporal_iou,
                "spatial_iou": comp.spatial_iou,
                "weighted_spatial_iou": comp.weighted_spatial_iou,
                "mse": comp.mse,
            }
        except ValueError:  # a category whose takes never move together: no variance to divide by
            fields = {"score": float("nan")}
        out.append({"category": cat, "n_scenarios": len(sub), **fields, "score_view": per_view_score(sub)})
    return pd.DataFrame(out)


def write_score_json(
    path: str | os.PathLike,
    components: ScoreComponents,
    view_score: float,
    categories: pd.DataFrame,
    extra: dict | None = None,
) -> Path:
    payload = {
        "physics_iq_score": components.score,
        "components": asdict(components),
        "score_view": view_score,
        "categories": categories.to_dict("records"),
        **(extra or {}),
    }
    path = Path(path)
    path.write_text(json.dumps(payload, indent=2, default=float))
    return path


def plot_categories(path: str | os.PathLike, categories: pd.DataFrame, overall: float, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    names = ["Overall"] + list(categories["category"])
    values = [overall] + [0.0 if np.isnan(v) else v for v in categories["score"]]
    bars = ax.bar(names, values, color=["#444444"] + ["#4c72b0"] * len(categories))
    for bar, v in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:.1f}", ha="center", va="bottom", fontsize=9)
    ax.axhline(100, color="darkgrey", linestyle="--", linewidth=1.5)
    ax.text(len(names) - 0.5, 101, "Physical variance", ha="right", va="bottom", fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_ylabel("Physics-IQ score (higher = better)")
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
