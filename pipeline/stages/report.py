"""report: the results table, a text summary, plots, a static HTML page and the wandb run."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import pandas as pd

from pipeline.compute import totals
from pipeline.fields import operational
from pipeline.files import atomic_write_bytes, atomic_write_text
from pipeline.report_page import ItemMedia, plot_surprises, render_run_page
from pipeline.search import num_candidates
from pipeline.stages.base import ALL, Output, Stage
from pipeline.summary import format_summary

METRICS = ("spatiotemporal_iou", "spatial_iou", "weighted_spatial_iou", "mse")


if TYPE_CHECKING:
    from pipeline.benchmarks.physicsiq.spec import PhysicsIQConfig
    from pipeline.config import TrackingConfig
    from pipeline.generators.base import GeneratorConfig
    from pipeline.search.base import SearchConfig


@dataclass
class ReportConfig:
    plots: bool = operational(True)  # PNG plots and their wandb images


@dataclass(frozen=True)
class ReportSections:
    """The config sections report reads."""

    name: str
    search: SearchConfig
    report: ReportConfig
    tracking: TrackingConfig
    sweep: str | None  # the wandb group
    benchmark: PhysicsIQConfig  # the ground truth the page shows beside each item
    generator: GeneratorConfig


class Report(Stage[ReportSections]):
    name = "report"
    sections = ReportSections
    upstream = ("score", "select", "evaluate")
    aggregate = True

    def items_table(self) -> pd.DataFrame:
        evaluation = self.store.require("evaluate", ALL).data
        per_item = {row["item_id"]: row for row in evaluation["per_item"]}
        rows = []
        for item in self.manifest.items:
            sampled = self.store.require("sample", item.item_id).data.get("compute", {})
            score = self.store.require("score", item.item_id).data
            scored, cands = score.get("compute", {}), score["candidates"]
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
                    "nfe": sampled.get("nfe"),
                    # the reward inside sampling (search) and after it (score)
                    "reward_forwards": sampled.get("reward_forwards", 0) + scored.get("reward_forwards", 0),
                    "reward_backwards": sampled.get("reward_backwards", 0),
                    **{m: metrics.get(m) for m in METRICS},
                }
            )
        return pd.DataFrame(rows)

    def media(self) -> dict[str, ItemMedia]:
        """Per item, the files its row of the page shows: the condition image, the candidates with
        their surprises, the submitted video and the ground truth (take 1 at the run's fps)."""
        from pipeline.benchmarks.physicsiq.layout import PhysicsIQDataset

        try:
            dataset = PhysicsIQDataset(self.cfg.benchmark.root, self.cfg.benchmark.descriptions)
            truth = {it.item_id: dataset.testing_clip(it, self.cfg.generator.fps, 1) for it in dataset.items}
        except Exception:  # a page without the ground truth is still a page
            truth = {}
        out = {}
        for item in self.manifest.ids():
            condition = self.store.require("prepare", item).outputs.get("condition")
            scored = self.store.require("score", item).data["candidates"]
            conformed = self.store.read("conform", item)
            out[item] = ItemMedia(
                condition=self.store.path(condition) if condition and condition.endswith(".png") else None,
                candidates=[(self.store.path(c["video"]), c["surprise"], c["seed"]) for c in scored],
                chosen=self.store.path(self.store.require("select", item).data["video"]),
                submitted=self.store.path(conformed.outputs["video"]) if conformed and conformed.done else None,
                ground_truth=truth.get(item) if truth.get(item) and truth[item].is_file() else None,
            )
        return out

    def compute_totals(self) -> dict[str, float]:
        """``compute/...`` over the records that stand (what made the results, attempt by attempt)."""
        entries = {
            stage: [
                rec.data["compute"]
                for item in self.manifest.ids()
                if (rec := self.store.read(stage, item)) is not None and "compute" in rec.data
            ]
            for stage in ("sample", "score")
        }
        return totals(entries)

    def run(self, item_id: str) -> Output:
        from omegaconf import OmegaConf

        from pipeline.tracking import WandbRun, log_to_wandb, sync_command

        results = self.store.root / "results"
        report = self.store.outputs_dir(self.name)
        table = self.items_table()
        evaluated = self.store.require("evaluate", ALL)
        evaluation = evaluated.data
        summary = summarize(self.cfg, self.store.root.name, table, evaluation)
        summary.update(verified_components(self.store.path(evaluated.outputs["csv"])))
        summary.update(self.compute_totals())
        files = {
            "items_parquet": results / "items.parquet",
            "items_csv": results / "items.csv",
            "summary_json": results / "summary.json",
            "summary_txt": results / "summary.txt",
            "html": report / "index.html",
        }
        images = {}
        if self.cfg.report.plots:
            images["surprise_per_item"] = plot_surprises(table, report / "surprise_per_item.png")
            images.update({k: self.store.path(v) for k, v in evaluated.outputs.items() if v.endswith(".png")})
        media = self.media()
        atomic_write_text(files["html"], render_run_page(summary, evaluation, table, media, images, report))
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        atomic_write_bytes(files["items_parquet"], buf.getvalue())
        atomic_write_text(files["items_csv"], table.to_csv(index=False))
        atomic_write_text(files["summary_json"], json.dumps(summary, indent=2))
        atomic_write_text(files["summary_txt"], format_summary(summary, evaluation, self.store.root))
        # wandb last: the results stand on disk even when logging fails (the item is then redone)
        resolved = cast(dict, OmegaConf.to_container(OmegaConf.load(self.store.root / "resolved.yaml")))
        who = WandbRun(self.cfg.name, self.store.root.name, self.cfg.sweep, self.cfg.search.name)
        logged = log_to_wandb(self.cfg.tracking.wandb, self.store.root, who, resolved, table, media, summary, images)
        sync = sync_command(logged, self.cfg.tracking.wandb.mode)
        if sync:
            atomic_write_text(files["summary_txt"], format_summary(summary, evaluation, self.store.root, sync))
        return Output(
            outputs={k: self.store.rel(v) for k, v in files.items()},
            data={"summary": summary, "wandb": logged, "wandb_sync": sync},
        )


def verified_components(results_csv) -> dict[str, float]:
    """``verified/<field>`` (percent) of the run's results table: the Verified formula's score and
    components, as the leaderboard reports them."""
    from pipeline.benchmarks.physicsiq.iq_score import read_results_csv
    from pipeline.benchmarks.physicsiq.verified import FIELDS, run_scores

    scores = run_scores(read_results_csv(results_csv))
    return {f"verified/{name}": 100 * scores[name] for name in FIELDS}


def summarize(cfg, run_key: str, table: pd.DataFrame, evaluation: dict) -> dict:
    return {
        "experiment": cfg.name,
        "run_key": run_key,
        "items": len(table),
        "candidates_per_item": num_candidates(cfg.search),
        "physics_iq_score": evaluation["score"],
        "physics_iq_score_per_view": evaluation["per_view_score"],
        "board": cfg.benchmark.board,  # whose ground truth the scores are against
        **{f"component/{k}": v for k, v in evaluation["components"].items()},
        "surprise/chosen_mean": float(table["chosen_surprise"].mean()),
        "surprise/all_mean": float(table["mean_surprise"].mean()),
    }
