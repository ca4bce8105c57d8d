"""The report's plot of candidate surprises and its static HTML page."""

from __future__ import annotations

import html
import io

import pandas as pd

from pipeline.files import atomic_write_bytes


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
