"""``compare``: two demo runs side by side (table, plots, page), the best-of-N curve reproducing the
pool run's own score at N, deterministic draws, sweeps by name, and bad input named."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.cli.compare import main as compare_main
from pipeline.cli.run import run
from tests.conftest import compose

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_runs(tiny_models, small_dataset, tmp_path_factory):
    from tests.conftest import demo_args

    tmp = tmp_path_factory.mktemp("compare")
    base = [a for a in demo_args(tiny_models, small_dataset, tmp) if a != "tracking=disabled"]
    args = [*base, "tracking=offline", "benchmark.max_scenarios=1", "tracking.progress=false"]
    small = run(compose([*args, "search.n=2", "sweep=growth"]))
    big = run(compose([*args, "search.n=4", "sweep=growth"]))
    return small, big, tmp


def test_compare_writes_table_curve_plots_and_page(two_runs, capsys):
    small, big, tmp = two_runs
    out = tmp / "cmp"
    assert compare_main([f"runs=[{small},{big}]", f"out={out}", "draws=8"]) == 0
    printed = capsys.readouterr().out
    assert "best-of-N curve from demo/" in printed and f"page: {out / 'index.html'}" in printed
    table = pd.read_parquet(out / "compare.parquet")
    assert table.equals(pd.read_csv(out / "compare.csv")) or len(pd.read_csv(out / "compare.csv")) == 2
    assert list(table["search.n"]) == [2, 4]
    settings = [c for c in table.columns if "." in c and "/" not in c]
    assert settings == ["search.n"]  # only what differs
    for run_dir, row in zip((small, big), table.to_dict("records")):
        summary = json.loads((run_dir / "results" / "summary.json").read_text())
        assert row["physics_iq_original"] == summary["physics_iq_score"]
        assert row["physics_iq_verified_formula"] == pytest.approx(summary["physics_iq_score_per_view"], abs=1e-9)
        assert row["nfe"] == summary["compute/nfe"]
    for name in ("bon_curve.png", "categories.png", "surprise_vs_score.png", "score_vs_compute.png", "index.html"):
        assert (out / name).stat().st_size > 1000, name

    curve = pd.read_csv(out / "bon_curve_summary.csv")
    assert list(curve["n"]) == [1, 2, 4] and list(curve["draws"]) == [8, 8, 1]
    # N = 4 is the pool run's own choice: the evaluator's numbers, to the last digit
    big_summary = json.loads((big / "results" / "summary.json").read_text())
    top = curve[curve["n"] == 4].iloc[0]
    assert top["physics_iq_original_mean"] == big_summary["physics_iq_score"]
    assert top["physics_iq_verified_formula_mean"] == pytest.approx(big_summary["physics_iq_score_per_view"], abs=1e-9)
    draws = pd.read_csv(out / "bon_curve.csv")
    assert len(draws) == 8 + 8 + 1

    page = (out / "index.html").read_text()
    assert page.count("<tr>") == 2 + 3 + 2  # the runs, the curve, the two header rows
    assert 'href="../' in page and "report/outputs/index.html" in page

    again = tmp / "cmp_again"
    assert compare_main([f"runs=[{small},{big}]", f"out={again}", "draws=8", "plots=false"]) == 0
    assert (again / "bon_curve.csv").read_text() == (out / "bon_curve.csv").read_text()  # seeded draws


def test_n1_curve_point_is_one_candidate_per_item(two_runs):
    """A selection of candidate k for every item scores as candidate k's own evaluation."""
    from pipeline.benchmarks.physicsiq.iq_score import physics_iq_score
    from pipeline.compare.bon_curve import bon_curve, chosen_table, evaluate_candidates
    from pipeline.compare.runs import read_run

    _, big, tmp = two_runs
    pool = evaluate_candidates(read_run(big), tmp / "pool")
    assert pool.size == 4
    for k in range(4):  # every item on candidate k is candidate k's own evaluation
        assert (
            physics_iq_score(chosen_table(pool, dict.fromkeys(pool.items, k))).score
            == physics_iq_score(pool.tables[k]).score
        )
    curve = bon_curve(pool, draws=5, seed=3)
    assert list(curve["n"]) == [1] * 5 + [2] * 5 + [4]
    assert curve["physics_iq_original"].between(0, 100).all()


def test_sweep_points_are_one_wandb_group(two_runs):
    for run_dir in two_runs[:2]:
        logged = json.loads((run_dir / "report" / "items" / "all.json").read_text())["data"]["wandb"]
        assert (logged["group"], logged["job_type"]) == ("growth", "best_of_n")


def test_compare_a_sweep_by_name(two_runs, capsys):
    small, big, tmp = two_runs
    run_root = small.parent.parent
    assert compare_main(["sweep=growth", f"run_root={run_root}", "draws=2", "plots=false"]) == 0
    out = run_root / "sweeps" / "growth"
    table = pd.read_csv(out / "compare.csv")
    assert list(table["run"]) == [f"demo/{small.name}", f"demo/{big.name}"]
    capsys.readouterr()


def test_compare_names_bad_input(two_runs, tmp_path, capsys):
    small, big, tmp = two_runs
    cases = [
        ([f"runs=[{small}]", "sweep=growth"], "either runs=[...] or sweep=NAME"),
        ([f"runs=[{small}]"], "out=DIR is required"),
        (["sweep=nope", f"run_root={small.parent.parent}"], "sweep=nope: no such sweep"),
        ([f"runs=[{tmp_path}]", f"out={tmp_path / 'o'}"], "not a run folder"),
        ([f"runs=[{small},{small}]", f"out={tmp_path / 'o'}"], "listed twice"),
        ([f"runs=[{small}]", f"out={tmp_path / 'o'}", "draws=0"], "draws=0 must be >= 1"),
    ]
    for argv, message in cases:
        assert compare_main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
