"""report: the results table, a text summary, plots, a static HTML page and the wandb run."""

from __future__ import annotations

import html
import io
import json
from dataclasses import dataclass
from typing import cast

import pandas as pd

from pipeline.fields import operational
from pipeline.files import atomic_write_bytes, atomic_write_text
from pipeline.stages.base import ALL, Output, Stage

METRICS = ("spatiotemporal_iou", "spatial_iou", "weighted_spatial_iou", "mse")


@dataclass
class ReportConfig:
    plots: bool = operational(True)  # PNG plots and their wandb images


class Report(Stage):
    name = "report"
    upstream = ("score", "select", "evaluate")
    aggregate = True

    def items_table(self) -> pd.DataFrame:
        evaluation = self.store.require("evaluate", ALL).data
        per_item = {row["item_id"]: row for row in evaluation["per_item"]}
        rows = []
        for item in self.manifest.items:
            cands = self.store.require("score", item.item_id).data["candidates"]
            chosen = self.store.require("select", item.item_id).data
            excluded = chosen.get("excluded", {})
            finite = [c["surprise"] for c in cands if c["name"] not in excluded]
            metrics = per_item.get(item.item_id, {})
            rows.append(
                {
                    "item_id": item.item_id,
                    "scenario": item.scenario,
                    "view": item.view,
                    "category": item.category,
                    "prompt": item.prompt,
                    "seeds": [c["seed"] for c in cands],
                    "surprises": [float("nan") if c["name"] in excluded else c["surprise"] for c in cands],
                    "excluded": "; ".join(f"{name}: {why}" for name, why in excluded.items()),
                    "chosen_seed": chosen["seed"],
                    "chosen_surprise": chosen["surprise"],
                    "mean_surprise": sum(finite) / len(finite),
                    **{m: metrics.get(m) for m in METRICS},
                }
            )
        return pd.DataFrame(rows)

    def run(self, item_id: str) -> Output:
        results = self.store.root / "results"
        report = self.store.outputs_dir(self.name)
        table = self.items_table()
        evaluation = self.store.require("evaluate", ALL).data
        summary = summarize(self.cfg, self.store.root.name, table, evaluation)
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        files = {
            "items_parquet": results / "items.parquet",
            "items_csv": results / "items.csv",
            "summary_json": results / "summary.json",
            "summary_txt": results / "summary.txt",
            "html": report / "index.html",
        }
        atomic_write_bytes(files["items_parquet"], buf.getvalue())
        atomic_write_text(files["items_csv"], table.to_csv(index=False))
        atomic_write_text(files["summary_json"], json.dumps(summary, indent=2))
        text = format_summary(summary, evaluation, self.store.root)
        atomic_write_text(files["summary_txt"], text)
        images = {}
        if self.cfg.report.plots:
            images["surprise_per_item"] = plot_surprises(table, report / "surprise_per_item.png")
            images.update(
                {
                    k: self.store.path(v)
                    for k, v in self.store.require("evaluate", ALL).outputs.items()
                    if v.endswith(".png")
                }
            )
        atomic_write_text(files["html"], render_html(summary, table, images, report))
        from omegaconf import OmegaConf

        from pipeline.tracking import log_to_wandb

        resolved = cast(dict, OmegaConf.to_container(OmegaConf.load(self.store.root / "resolved.yaml")))
        wandb_dir = log_to_wandb(
            self.cfg.tracking.wandb,
            self.store.root,
            self.cfg.name,
            self.store.root.name,
            resolved,
            table,
            summary,
            images,
        )
        return Output(
            outputs={k: self.store.rel(v) for k, v in files.items()}, data={"summary": summary, "wandb_dir": wandb_dir}
        )


def summarize(cfg, run_key: str, table: pd.DataFrame, evaluation: dict) -> dict:
    return {
        "experiment": cfg.name,
        "run_key": run_key,
        "items": len(table),
        "candidates_per_item": cfg.search.n,
        "physics_iq_score": evaluation["score"],
        "physics_iq_score_per_view": evaluation["per_view_score"],
        **{f"component/{k}": v for k, v in evaluation["components"].items()},
        "surprise/chosen_mean": float(table["chosen_surprise"].mean()),
        "surprise/all_mean": float(table["mean_surprise"].mean()),
    }


def summary_text(store) -> str | None:
    """The run's summary rendered from its records (None until report has run)."""
    record = store.read(Report.name, ALL)
    evaluation = store.read("evaluate", ALL)
    if record is None or not record.done or evaluation is None:
        return None
    return format_summary(record.data["summary"], evaluation.data, store.root)


def format_summary(summary: dict, evaluation: dict, run_dir) -> str:
    lines = [
        f"experiment: {summary['experiment']}  (run key {summary['run_key']})",
        f"items: {summary['items']}  candidates per item: {summary['candidates_per_item']}",
        f"surprise: chosen {summary['surprise/chosen_mean']:.4f}  vs all candidates "
        f"{summary['surprise/all_mean']:.4f}  (lower = more plausible)",
        "Physics-IQ components      model   physical variance",
    ]
    comp = evaluation["components"]
    for label, key in (
        ("spatiotemporal IoU", "spatiotemporal_iou"),
        ("spatial IoU", "spatial_iou"),
        ("weighted spatial IoU", "weighted_spatial_iou"),
        ("MSE", "mse"),
    ):
        lines.append(f"  {label:<22}{comp[key]:>8.4f}{comp['var_' + key]:>20.4f}")
    cats = pd.DataFrame(evaluation["per_category"])
    if not cats.empty:
        lines.append("per category:\n" + cats.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    lines += [
        f"Physics-IQ score (per view): {summary['physics_iq_score_per_view']:.2f}",
        f"Physics-IQ score: {summary['physics_iq_score']:.2f}",
        f"run: {run_dir}",
    ]
    return "\n".join(lines) + "\n"


def plot_surprises(table: pd.DataFrame, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(table)), 3.2))
    for x, row in enumerate(table.itertuples()):
        ax.scatter([x] * len(row.surprises), row.surprises, s=14, color="0.6")
        ax.scatter([x], [row.chosen_surprise], s=40, color="tab:red", marker="*")
    ax.set_xticks(range(len(table)), table["item_id"], rotation=90, fontsize=7)
    ax.set_ylabel("V-JEPA 2 surprise")
    ax.set_title("candidates (grey) and the chosen one (red) per item")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def render_html(summary: dict, table: pd.DataFrame, images: dict, report_dir) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in summary.items())
    imgs = "".join(
        f'<h3>{html.escape(k)}</h3><img src="{html.escape(_relative(p, report_dir))}">' for k, p in images.items()
    )
    return (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(summary['experiment'])}</title>"
        f"<h1>{html.escape(summary['experiment'])} — Physics-IQ {summary['physics_iq_score']:.2f}</h1>"
        f"<table>{rows}</table>{imgs}<h2>items</h2>{table.to_html(index=False)}"
    )


def _relative(path, start) -> str:
    import os

    return os.path.relpath(path, start)
