"""The comparison's HTML page: the runs side by side (only what differs, the scores, the compute),
links to each run's own report, the best-of-N curve and the plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipeline import page_parts as pp

from .runs import FinishedRun


def render_compare_page(
    title: str,
    table: pd.DataFrame,
    runs: Sequence[FinishedRun],
    settings: Sequence[str],
    plots: dict[str, Path],
    curve: pd.DataFrame | None,
    curve_source: str | None,
    page_dir: Path,
    repeats: list[str] | None = None,
) -> str:
    headers = [
        "#",
        "run",
        *settings,
        "Physics-IQ (Original)",
        "Physics-IQ (Verified formula)",
        "chosen surprise",
        "candidates",
        "NFEs",
        "reward forwards",
        "seconds",
    ]
    rows = []
    for i, (row, run) in enumerate(zip(table.to_dict("records"), runs)):
        page = run.run_dir / "report" / "outputs" / "index.html"
        name = pp.esc(row["run"])
        link = f'<a href="{pp.esc(pp.relative(page, page_dir))}">{name}</a>' if page.exists() else name
        rows.append(
            [
                pp.numeric_cell(i, 0),
                (link, row["run"]),
                *[
                    pp.numeric_cell(row[k], 4) if isinstance(row[k], (int, float)) else pp.text_cell(row[k])
                    for k in settings
                ],
                pp.numeric_cell(row["physics_iq_original"]),
                pp.numeric_cell(row["physics_iq_verified_formula"]),
                pp.numeric_cell(row["surprise_chosen_mean"], 4),
                pp.numeric_cell(row["candidates_per_item"], 0),
                pp.numeric_cell(row["nfe"], 0),
                pp.numeric_cell(row["reward_forwards"], 0),
                pp.numeric_cell(row["seconds"], 1),
            ]
        )
    best = table["physics_iq_original"].idxmax()
    headline = pp.cards(
        [
            ("runs", str(len(runs))),
            ("settings that differ", str(len(settings)) if settings else "none"),
            ("best Physics-IQ (Original)", f"{pp.number(table['physics_iq_original'][best])} (#{best})"),
            ("best Physics-IQ (Verified formula)", pp.number(table["physics_iq_verified_formula"].max())),
        ]
    )
    body = [f"<h1>{pp.esc(title)}</h1>", headline]
    if repeats:
        body.append("<h2>repeated runs</h2><pre>" + pp.esc("\n".join(repeats)) + "</pre>")
    body += ["<h2>runs</h2>", pp.table(headers, rows)]
    if curve is not None:
        body.append(f"<h2>best-of-N curve</h2><div class=muted>from the candidates of {pp.esc(curve_source)}</div>")
        body.append(
            pp.table(
                ["N", "Original (mean)", "± std", "Verified formula (mean)", "± std", "draws"],
                [
                    [
                        pp.numeric_cell(r["n"], 0),
                        pp.numeric_cell(r["physics_iq_original_mean"]),
                        pp.numeric_cell(r["physics_iq_original_std"]),
                        pp.numeric_cell(r["physics_iq_verified_formula_mean"]),
                        pp.numeric_cell(r["physics_iq_verified_formula_std"]),
                        pp.numeric_cell(r["draws"], 0),
                    ]
                    for r in curve.to_dict("records")
                ],
                sortable=False,
            )
        )
    body.append("<h2>plots</h2>" + "".join(pp.plot(pp.relative(p, page_dir), name) for name, p in plots.items()))
    return pp.page(title, "".join(body))
