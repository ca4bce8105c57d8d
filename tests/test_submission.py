"""Physics-IQ Verified: the aggregate over runs, and a submission package built from two finished
demo runs (two seeds) that the leaderboard's checks accept, while a package with a 4.9 s file, a
missing id or two frame rates is refused with every offender named."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.benchmarks.physicsiq.iq_score import per_view_score, read_results_csv
from pipeline.benchmarks.physicsiq.verified import FIELDS, aggregate, run_scores
from pipeline.cli.run import run
from pipeline.stages.base import ALL
from pipeline.store import RunStore
from pipeline.submission.__main__ import main
from pipeline.submission.checks import package_problems
from pipeline.video_io import probe_video, read_video, write_video
from tests.conftest import compose, demo_args

pytestmark = pytest.mark.slow


def test_the_aggregate_is_mean_and_sample_std_over_runs_in_percent():
    runs = [
        {**{f: 0.50 for f in FIELDS}, "physiq_sem_over_samples": 0.01},
        {**{f: 0.60 for f in FIELDS}, "physiq_sem_over_samples": 0.03},
    ]
    agg = aggregate(runs)
    for f in FIELDS:
        assert agg[f"{f}_mean"] == pytest.approx(55.0) and agg[f"{f}_std"] == pytest.approx(math.sqrt(50.0))
    assert agg["physiq_sem_over_samples"] == pytest.approx(2.0) and agg["runs"] == 2
    assert math.isnan(aggregate(runs[:1])["physiq_std"])  # one run: no std, as the leaderboard's script


@pytest.fixture(scope="module")
def two_runs(tiny_models, small_dataset, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("submission")
    overrides = demo_args(tiny_models, small_dataset, tmp)
    return [run(compose([*overrides, f"search.base_seed={seed}"])) for seed in (0, 10)], tmp


def test_two_runs_make_a_package_the_checks_accept(two_runs, capsys):
    runs, tmp = two_runs
    out = tmp / "package"
    assert main([f"run={runs[0]}", f"run={runs[1]}", f"out={out}", "organization=acme"]) == 0
    printed = capsys.readouterr().out
    assert "Physics-IQ Verified" in printed and "Physics-IQ Original" in printed
    assert "terms.terms_accepted" in printed and "public_info.organization" not in printed
    assert (
        f"submission id: acme__wan-i2v__{yaml.safe_load((out / 'submission.yaml').read_text())['public_info']['date']}"
        in printed
    )
    assert "not Verified-board numbers" in printed  # the demo's ground truth is the Original one
    card = yaml.safe_load((out / "submission.yaml").read_text())
    info = card["public_info"]
    assert info["input_type"] == "i2v" and info["bon_sampling"] == 2 and info["descriptions"] == "op"
    first = probe_video(next((out / "runs").glob("*/*.mp4")))
    assert info["resolution"] == f"{first.width}x{first.height}" and info["fps"] == pytest.approx(first.fps)
    assert card["terms"]["terms_accepted"] is None and card["warranties"] is None  # a person's to give
    # the reported scores are the aggregate of each run's Verified numbers, from its results table
    per_run = []
    for r in runs:
        table = read_results_csv(RunStore(r).path(RunStore(r).read("evaluate", ALL).outputs["csv"]))
        per_run.append(run_scores(table))
        assert per_run[-1]["physiq"] * 100 == pytest.approx(per_view_score(table))
    agg = aggregate(per_run)
    assert card["reported_scores"]["physiq_mean"] == pytest.approx(agg["physiq_mean"], abs=0.005)
    folders = sorted(p.name for p in (out / "runs").iterdir())
    assert len(folders) == 2 and folders[0].endswith("-op-run_01")
    table = pd.read_csv(out / "descriptions.csv")
    assert list(table.columns) == ["scenario", "description", "generated_video_name"] and len(table) == 6
    assert package_problems(out, expected=6) == []
    assert main([f"check={out}", "expected=6"]) == 0
    # a second package into the same folder is refused, and the first is left as it was
    assert main([f"run={runs[0]}", f"out={out}"]) == 2
    assert "not empty" in capsys.readouterr().err and package_problems(out, expected=6) == []


def test_a_broken_package_is_refused_with_every_offender_named(two_runs, capsys):
    runs, tmp = two_runs
    good = tmp / "package-broken-source"
    assert main([f"run={runs[0]}", f"out={good}"]) == 0
    broken = tmp / "broken"
    shutil.copytree(good, broken)
    files = sorted((broken / "runs").glob("*/*.mp4"))
    frames, fps = read_video(files[0])
    write_video(files[0], frames[: int(round(4.9 * fps))], fps)  # 4.9 s
    files[2].unlink()  # a missing id: the files after it are off by one
    frames, fps = read_video(files[3])
    write_video(files[3], frames[::2][: int(round(5 * fps / 2))], fps / 2)  # another frame rate, still 5 s
    assert main([f"check={broken}", "expected=6"]) == 2
    err = capsys.readouterr().err
    assert f"{files[0]}: {probe_video(files[0]).duration:.3f} s long, must be 5.000 ± 0.001 s" in err
    assert (
        "5 mp4 files, the leaderboard wants 6" in err and f"{files[3]}: file 3 of the run must start with 0003_" in err
    )
    assert "more than one frame rate" in err and files[3].name in err
    assert np.all([line.startswith("  ") for line in err.splitlines()[1:]])  # one offender per line

    # a submission id off the leaderboard's pattern names the card fields that make it so
    card = yaml.safe_load((good / "submission.yaml").read_text())
    card["public_info"].update(organization="ACME Labs", model="wan_i2v")
    (good / "submission.yaml").write_text(yaml.safe_dump(card))
    assert main([f"check={good}", "expected=6"]) == 2
    err = capsys.readouterr().err
    assert "submission id 'ACME Labs__wan_i2v__" in err
    assert "organization='ACME Labs' (must match [a-z0-9]+)" in err and "model='wan_i2v'" in err and "date=" not in err
