"""``benchmark=physicsiq_verified``: the Verified score named as such beside the Original formula,
the best-practice prompt set the dataset ships (``prompts=bpp``), and repeated runs with distinct
seeds aggregated the leaderboard's way by ``compare``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.benchmarks.physicsiq.iq_score import read_results_csv
from pipeline.benchmarks.physicsiq.synthetic import BPP_PREFIX
from pipeline.benchmarks.physicsiq.verified import FIELDS, aggregate, run_scores
from pipeline.cli.compare import main as compare_main
from pipeline.cli.run import run
from pipeline.errors import ConfigError
from pipeline.stages.base import ALL
from pipeline.store import RunStore
from tests.conftest import compose

pytestmark = pytest.mark.slow


@pytest.fixture
def verified(one_scenario) -> list[str]:
    return [*one_scenario, "benchmark=physicsiq_verified", "search.n=1", "tracking.progress=false"]


def results_table(run_dir):
    store = RunStore(run_dir)
    return read_results_csv(store.path(store.require("evaluate", ALL).outputs["csv"]))


def test_verified_board_names_its_score_and_uses_the_shipped_bpp_prompts(verified, capsys):
    run_dir = run(compose([*verified, "benchmark.prompts=bpp"]))
    printed = capsys.readouterr().out
    score = 100 * run_scores(results_table(run_dir))["physiq"]
    assert f"Physics-IQ Verified score: {score:.2f}" in printed
    assert "Original formula on the Verified ground truth" in printed
    assert "Physics-IQ score: " not in printed  # no Original-board number is claimed
    prompts = [json.loads(p.read_text())["data"]["prompt"] for p in (run_dir / "prepare" / "items").glob("*.json")]
    assert len(prompts) == 3 and all(p.startswith(BPP_PREFIX) for p in prompts)
    assert json.loads((run_dir / "results" / "summary.json").read_text())["board"] == "verified"


def test_bpp_without_the_shipped_file_is_refused_before_any_work(verified, small_dataset, tmp_path):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(small_dataset, bare)
    (bare / "descriptions" / "best_practice" / "descriptions_base.csv").unlink()
    args = [a for a in verified if not a.startswith("benchmark.root=")]
    with pytest.raises(ConfigError, match="benchmark.prompts=bpp: the dataset has no descriptions/best_practice"):
        run(compose([*args, f"benchmark.root={bare}", "benchmark.prompts=bpp"]))
    assert not (tmp_path / "runs").exists()


def test_repeated_runs_aggregate_as_the_leaderboard(verified, tmp_path, capsys):
    runs = [run(compose([*verified, f"search.base_seed={seed}", "sweep=repeats"])) for seed in (0, 1000, 2000)]
    run_root = runs[0].parent.parent
    capsys.readouterr()
    assert compare_main(["sweep=repeats", f"run_root={run_root}", "plots=false"]) == 0
    printed = capsys.readouterr().out
    agg = json.loads((run_root / "sweeps" / "repeats" / "aggregate.json").read_text())
    direct = aggregate([run_scores(results_table(r)) for r in runs])
    for name in FIELDS:
        values = [100 * run_scores(results_table(r))[name] for r in runs]
        assert agg[f"{name}_mean"] == pytest.approx(np.mean(values), abs=1e-9)
        assert agg[f"{name}_std"] == pytest.approx(np.std(values, ddof=1), abs=1e-9)
        assert agg[f"{name}_mean"] == pytest.approx(direct[f"{name}_mean"], abs=1e-12)
    assert agg["runs"] == 3
    assert f"Physics-IQ Verified {agg['physiq_mean']:.1f} ± {agg['physiq_std']:.1f} (mean ± std over 3 runs)" in printed
    assert "std over samples / sqrt(n), named apart" in printed
    # runs that differ in more than seeds are no repeats: no aggregate
    other = run(compose([*verified, "search.n=2", "sweep=mixed"]))
    assert compare_main([f"runs=[{runs[0]},{other}]", f"out={tmp_path / 'mixed'}", "plots=false", "draws=2"]) == 0
    assert not (tmp_path / "mixed" / "aggregate.json").exists()
