"""Compare finished runs: ``python -m pipeline compare runs=[A,B] | sweep=NAME out=DIR``.

Writes into ``out``: ``compare.csv`` and ``compare.parquet`` (one row per run: the settings that
differ, the scores, the compute), ``bon_curve.csv`` (every bootstrap draw) and
``bon_curve_summary.csv`` when a best-of-N run with N >= 2 is among them, ``aggregate.json`` when
the runs are repeats of one setting (they differ only in seeds: the leaderboard's mean ± std over
runs), the plots and ``index.html``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.errors import PipelineError
from pipeline.files import atomic_write_bytes, atomic_write_text

from .bon_curve import bon_curve, curve_summary, evaluate_candidates
from .page import render_compare_page
from .plots import plot_bon_curve, plot_categories, plot_score_vs_compute, plot_surprise_vs_score
from .repeats import describe_repeats, repeat_aggregate
from .runs import FinishedRun, comparison_table, differing, read_run


@dataclass
class Comparison:
    table: pd.DataFrame
    files: dict[str, Path] = field(default_factory=dict)
    curve: pd.DataFrame | None = None  # the curve's summary per N
    curve_source: str | None = None
    repeats: dict[str, float] | None = None  # the aggregate, when the runs differ only in seeds

    def text(self) -> str:
        shown = self.table.drop(columns=[c for c in self.table.columns if "/" in c])
        lines = [shown.to_string(index=True, float_format=lambda v: f"{v:.4g}")]
        if self.curve is not None:
            lines.append(f"best-of-N curve from {self.curve_source} (mean ± std over draws):")
            for r in self.curve.to_dict("records"):
                lines.append(
                    f"  N={int(r['n']):<3} Original {r['physics_iq_original_mean']:.2f} ± {r['physics_iq_original_std']:.2f}"
                    f"   Verified formula {r['physics_iq_verified_formula_mean']:.2f} ± "
                    f"{r['physics_iq_verified_formula_std']:.2f}   ({int(r['draws'])} draw(s))"
                )
        if self.repeats is not None:
            lines += describe_repeats(self.repeats)
        lines.append(f"page: {self.files['html']}")
        return "\n".join(lines)


def pick_pool_run(runs: Sequence[FinishedRun], wanted: str | None) -> FinishedRun | None:
    """The run whose candidates make the best-of-N curve: ``wanted``, or the best-of-N run with
    the most candidates (at least 2); None when there is none."""
    if wanted is not None:
        for run in runs:
            if run.run_dir.resolve() == Path(wanted).resolve():
                return run
        return read_run(wanted)
    bon = [r for r in runs if getattr(r.cfg.search, "name", None) == "best_of_n" and r.cfg.search.n >= 2]
    return max(bon, key=lambda r: r.cfg.search.n) if bon else None


def compare(
    run_dirs: Sequence[str | Path],
    out: Path,
    title: str = "comparison",
    bon_run: str | None = None,
    draws: int = 100,
    seed: int = 0,
    workers: int = 1,
    plots: bool = True,
) -> Comparison:
    if not run_dirs:
        raise PipelineError("no runs to compare: give runs=[DIR,...] or sweep=NAME")
    runs = [read_run(d) for d in run_dirs]
    table = comparison_table(runs)
    settings = differing(runs)
    out = Path(out)
    result = Comparison(table)
    result.files["csv"] = out / "compare.csv"
    atomic_write_text(result.files["csv"], table.to_csv(index=False))
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    result.files["parquet"] = out / "compare.parquet"
    atomic_write_bytes(result.files["parquet"], buf.getvalue())
    result.repeats = repeat_aggregate(runs, settings)
    if result.repeats is not None:
        result.files["aggregate"] = out / "aggregate.json"
        atomic_write_text(result.files["aggregate"], json.dumps(result.repeats, indent=2))
    pool_run = pick_pool_run(runs, bon_run)
    images: dict[str, Path] = {}
    if pool_run is not None:
        pool = evaluate_candidates(pool_run, out / "bon_pool" / pool_run.run_dir.name, workers)
        curve = bon_curve(pool, draws=draws, seed=seed)
        result.curve, result.curve_source = curve_summary(curve), pool_run.label
        result.files["bon_curve"] = out / "bon_curve.csv"
        atomic_write_text(result.files["bon_curve"], curve.to_csv(index=False))
        result.files["bon_curve_summary"] = out / "bon_curve_summary.csv"
        atomic_write_text(result.files["bon_curve_summary"], result.curve.to_csv(index=False))
        if plots:
            images["best-of-N curve"] = plot_bon_curve(result.curve, pool_run.label, out / "bon_curve.png")
    if plots:
        labels = [f"#{i}" for i in range(len(runs))]
        images["per category"] = plot_categories(runs, labels, out / "categories.png")
        images["surprise vs Physics-IQ"] = plot_surprise_vs_score(runs, labels, out / "surprise_vs_score.png")
        images["score vs compute"] = plot_score_vs_compute(table, out / "score_vs_compute.png")
    result.files.update({f"plot:{k}": v for k, v in images.items()})
    repeats = describe_repeats(result.repeats) if result.repeats is not None else None
    page = render_compare_page(title, table, runs, settings, images, result.curve, result.curve_source, out, repeats)
    result.files["html"] = out / "index.html"
    atomic_write_text(result.files["html"], page)
    return result
