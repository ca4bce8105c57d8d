"""The text summary of a finished run: what ``run`` prints at its end and ``summary.txt`` holds."""

from __future__ import annotations

import pandas as pd


def summary_text(store) -> str | None:
    """The run's summary rendered from its records (None until report has run)."""
    from pipeline.stages.base import ALL  # the stages import this module

    record = store.read("report", ALL)
    evaluation = store.read("evaluate", ALL)
    if record is None or not record.done or evaluation is None:
        return None
    return format_summary(record.data["summary"], evaluation.data, store.root, record.data.get("wandb_sync"))


def format_summary(summary: dict, evaluation: dict, run_dir, wandb_sync: str | None = None) -> str:
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
    if "compute/nfe" in summary:
        seconds = ", ".join(
            f"{key.rsplit('/', 1)[1]} {value:.1f} s"
            for key, value in summary.items()
            if key.startswith("compute/seconds/")
        )
        lines.append(
            f"compute: {summary['compute/nfe']} NFEs, {summary.get('compute/vae_decodes', 0)} VAE decodes, "
            f"{summary.get('compute/reward_forwards', 0)} reward forwards"
            + (f", {summary['compute/reward_backwards']} backwards" if summary.get("compute/reward_backwards") else "")
            + f"; {seconds}; "
            f"peak memory {summary.get('compute/peak_memory_mb', 0):.0f} MB"
        )
    lines += [*score_lines(summary), f"run: {run_dir}"]
    if wandb_sync:
        lines.append(f"wandb (offline), to publish: {wandb_sync}")
    return "\n".join(lines) + "\n"


def score_lines(summary: dict) -> list[str]:
    """Both scores, each named by its formula and, for the board's own one, the board: on the
    Verified ground truth the Verified formula is the Verified score; the Original formula on it
    is no Original-board number (and the other way round)."""
    original, per_sample = summary["physics_iq_score"], summary["physics_iq_score_per_view"]
    if summary.get("board") == "verified":
        return [
            f"Physics-IQ score, Original formula on the Verified ground truth: {original:.2f} (not an Original-board number)",
            f"Physics-IQ Verified score: {per_sample:.2f}",
        ]
    return [
        # the Verified board's formula (mean over samples of clipped ratios) on the Original ground truth
        f"Physics-IQ score, Verified formula: {per_sample:.2f}",
        f"Physics-IQ score: {original:.2f} (Original)",
    ]
