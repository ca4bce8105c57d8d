"""The comparison's plots, each a PNG written atomically: the best-of-N curve with bootstrap error
bars, per-category scores per run, surprise against the per-sample Physics-IQ score, and score
against compute."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipeline.plotting import figure, save_png

from .runs import FinishedRun


def plot_bon_curve(summary: pd.DataFrame, label: str, path: Path) -> Path:
    fig, ax = figure()
    for col, name in (("physics_iq_original", "Original"), ("physics_iq_verified_formula", "Verified formula")):
        ax.errorbar(summary["n"], summary[f"{col}_mean"], yerr=summary[f"{col}_std"], marker="o", capsize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks(summary["n"], [str(n) for n in summary["n"]])
    ax.set_xlabel("N (candidates per item)")
    ax.set_ylabel("Physics-IQ score")
    draws = int(summary["draws"].max())
    ax.set_title(f"best-of-N from one pool ({label}); bars: std over {draws} draws", fontsize=9)
    ax.legend(fontsize=8)
    return save_png(fig, path)


def plot_categories(runs: Sequence[FinishedRun], labels: Sequence[str], path: Path) -> Path:
    cats = sorted({c["category"] for run in runs for c in run.evaluation["per_category"]})
    fig, ax = figure(max(6.0, 1.2 * len(cats) * max(1, len(runs)) / 2), 3.8)
    width = 0.8 / len(runs)
    for r, (run, label) in enumerate(zip(runs, labels)):
        by_cat = {c["category"]: c.get("score_view", float("nan")) for c in run.evaluation["per_category"]}
        xs = [i + (r - (len(runs) - 1) / 2) * width for i in range(len(cats))]
        ax.bar(xs, [by_cat.get(c, float("nan")) for c in cats], width=width, label=label)
    ax.set_xticks(range(len(cats)), cats, rotation=20, fontsize=8)
    ax.set_ylabel("Physics-IQ score (Verified formula)")
    ax.set_title("per category, per run", fontsize=9)
    ax.legend(fontsize=7)
    return save_png(fig, path)


def plot_surprise_vs_score(runs: Sequence[FinishedRun], labels: Sequence[str], path: Path) -> Path:
    fig, ax = figure()
    for run, label in zip(runs, labels):
        samples = run.samples.set_index(["scenario", "view"])["score"]
        xs = run.items["chosen_surprise"]
        ys = [100 * samples.loc[(s, v)] for s, v in zip(run.items["scenario"], run.items["view"])]
        ax.scatter(xs, ys, s=14, label=label)
    ax.set_xlabel("chosen candidate's surprise (lower = more plausible)")
    ax.set_ylabel("per-sample Physics-IQ score")
    ax.set_title("surprise against Physics-IQ, per item", fontsize=9)
    ax.legend(fontsize=7)
    return save_png(fig, path)


def plot_score_vs_compute(table: pd.DataFrame, path: Path) -> Path:
    fig, ax = figure()
    x = "nfe" if table["nfe"].gt(0).any() else "seconds"
    ax.scatter(table[x], table["physics_iq_original"], label="Original")
    ax.scatter(table[x], table["physics_iq_verified_formula"], marker="s", label="Verified formula")
    for row in table.itertuples():
        ax.annotate(
            str(row.Index),
            (getattr(row, x), row.physics_iq_original),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xlabel("generator NFEs (whole run)" if x == "nfe" else "seconds (whole run)")
    ax.set_ylabel("Physics-IQ score")
    ax.set_title("score against compute (labels: row of the table)", fontsize=9)
    ax.legend(fontsize=8)
    return save_png(fig, path)
