"""A run's report page and its plot of candidate surprises.

The page is what a researcher sends a colleague: the headline numbers, the components against
the physical variance, the plots, and one row per item with its condition, every candidate with
its surprise (the chosen one outlined), the submitted video and the ground truth, side by side
and playing in the page; the table sorts by any column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline import page_parts as pp
from pipeline.plotting import figure, save_png


@dataclass
class ItemMedia:
    """The files one item's row shows (None: not there to show)."""

    condition: Path | None = None
    candidates: list[tuple[Path, float, int]] = field(default_factory=list)  # (video, surprise, seed)
    chosen: Path | None = None  # the candidate select took (lineages of a search may share a seed)
    submitted: Path | None = None  # the conformed video the benchmark scored
    ground_truth: Path | None = None


def plot_surprises(table: pd.DataFrame, path):
    fig, ax = figure(max(4, 0.5 * len(table)), 3.2)
    for x, row in enumerate(table.itertuples()):
        ax.scatter([x] * len(row.surprises), row.surprises, s=14, color="0.6")
        ax.scatter([x], [row.chosen_surprise], s=40, color="tab:red", marker="*")
    ax.set_xticks(range(len(table)), table["item_id"], rotation=90, fontsize=7)
    ax.set_ylabel("V-JEPA 2 surprise")
    ax.set_title("candidates (grey) and the chosen one (red) per item")
    return save_png(fig, path)


COMPONENTS = (
    ("spatiotemporal IoU", "spatiotemporal_iou"),
    ("spatial IoU", "spatial_iou"),
    ("weighted spatial IoU", "weighted_spatial_iou"),
    ("MSE", "mse"),
)


def describe_protocol(evaluation: dict) -> str:
    p = evaluation.get("protocol", {})
    if not p:
        return ""
    size = "x".join(str(v) for v in p.get("size", []))
    first = "first frame dropped" if p.get("dropped_first_frame") else "first frame kept"
    return f"{p.get('mode')} at {p.get('fps'):g} fps, {size}, prompts: {p.get('prompts')}, {first}"


def render_run_page(
    summary: dict, evaluation: dict, table: pd.DataFrame, media: dict[str, ItemMedia], images: dict, page_dir: Path
) -> str:
    def link(path: Path) -> str:
        return pp.relative(path, page_dir)

    title = f"{summary['experiment']} · {summary['run_key']}"
    verified_board = summary.get("board") == "verified"
    headline = pp.cards(
        [
            (
                "Original formula, Verified ground truth" if verified_board else "Physics-IQ score (Original)",
                pp.number(summary["physics_iq_score"]),
            ),
            (
                "Physics-IQ Verified score" if verified_board else "Physics-IQ score, Verified formula",
                pp.number(summary["physics_iq_score_per_view"]),
            ),
            ("items", str(summary["items"])),
            ("candidates per item", str(summary["candidates_per_item"])),
            ("chosen surprise (mean)", pp.number(summary["surprise/chosen_mean"], 4)),
            ("all candidates' surprise (mean)", pp.number(summary["surprise/all_mean"], 4)),
            ("generator NFEs", pp.number(summary.get("compute/nfe", 0))),
            ("reward forwards", pp.number(summary.get("compute/reward_forwards", 0))),
        ]
    )
    comp = evaluation["components"]
    components = pp.table(
        ["component", "model", "physical variance"],
        [
            [pp.text_cell(label), pp.numeric_cell(comp[key], 4), pp.numeric_cell(comp[f"var_{key}"], 4)]
            for label, key in COMPONENTS
        ],
        sortable=False,
    )
    cats = pd.DataFrame(evaluation["per_category"])
    categories = ""
    if not cats.empty:
        headers = [c for c in ("category", "n_scenarios", "score", "score_view") if c in cats.columns]
        categories = pp.table(
            ["category", "scenarios", "score (Original formula)", "score (Verified formula)"][: len(headers)],
            [
                [pp.text_cell(r[h]) if h == "category" else pp.numeric_cell(r[h]) for h in headers]
                for r in cats.to_dict("records")
            ],
        )
    plots = "".join(pp.plot(link(p), name) for name, p in images.items())
    rows = []
    for r in table.to_dict("records"):
        m = media.get(r["item_id"], ItemMedia())
        cands = "".join(
            pp.video(link(v), f"seed {seed}: {pp.number(s, 4)}", chosen=v == m.chosen) for v, s, seed in m.candidates
        )
        rows.append(
            [
                pp.text_cell(r["item_id"]),
                pp.text_cell(r["category"]),
                (pp.esc(r["prompt"]), r["prompt"]),
                (pp.thumb(link(m.condition)) if m.condition else "–", r["item_id"]),
                (f'<div style="display:flex">{cands}</div>', r["item_id"]),
                (pp.video(link(m.submitted)) if m.submitted else "–", r["item_id"]),
                (pp.video(link(m.ground_truth)) if m.ground_truth else "–", r["item_id"]),
                pp.numeric_cell(r["chosen_surprise"], 4),
                pp.numeric_cell(r.get("spatiotemporal_iou"), 3),
                pp.numeric_cell(r.get("spatial_iou"), 3),
                pp.numeric_cell(r.get("weighted_spatial_iou"), 3),
                pp.numeric_cell(r.get("mse"), 4),
            ]
        )
    items = pp.table(
        [
            "item",
            "category",
            "prompt",
            "condition",
            "candidates (surprise; chosen outlined)",
            "submitted",
            "ground truth",
            "chosen surprise",
            "ST IoU",
            "S IoU",
            "WS IoU",
            "MSE",
        ],
        rows,
    )
    body = (
        f"<h1>{pp.esc(title)}</h1><div class=muted>{pp.esc(describe_protocol(evaluation))}</div>{headline}"
        f"<h2>components</h2>{components}<h2>per category</h2>{categories}<h2>plots</h2>{plots}"
        f"<h2>items</h2>{items}"
    )
    return pp.page(title, body)
