"""The command line as a user meets it: one clear message for bad input, multirun, --cfg job."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pipeline_run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "run", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_missing_dataset_folder_is_one_message(tmp_path):
    res = pipeline_run("+experiment=demo", f"benchmark.root={tmp_path / 'nope'}", f"run_root={tmp_path}")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"error: benchmark.root: Physics-IQ dataset folder does not exist: {tmp_path / 'nope'}"
    ]
    assert not (tmp_path / "demo").exists()  # stopped before any run folder was made


def test_missing_checkpoint_stops_before_any_work(tmp_path, small_dataset, tiny_models):
    res = pipeline_run(
        "+experiment=demo",
        f"benchmark.root={small_dataset}",
        f"run_root={tmp_path}",
        f"generator.checkpoint={tmp_path / 'no-such-model'}",
        f"reward.checkpoint={tiny_models['vjepa2']}",
        "tracking=disabled",
    )
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: generator.checkpoint=")
    assert "no-such-model" in lines[0]
    assert not list(tmp_path.glob("demo/*/prepare/items/*.json"))  # not even prepare ran

    res = pipeline_run(
        "+experiment=demo",
        f"benchmark.root={small_dataset}",
        f"run_root={tmp_path}",
        f"generator.checkpoint={tiny_models['wan_i2v']}",
        f"reward.checkpoint={tmp_path / 'no-reward'}",
        "tracking=disabled",
    )
    assert res.returncode == 2 and res.stderr.startswith("error: reward.checkpoint: ")


def test_config_typo_names_the_key(tmp_path):
    res = pipeline_run("+experiment=demo", "search.nn=4", f"run_root={tmp_path}")
    assert res.returncode != 0
    assert "Key 'nn' not in 'BestOfNConfig'" in res.stderr
    assert not (tmp_path / "demo").exists()


def test_cfg_job_prints_the_composed_config():
    res = pipeline_run("+experiment=demo", "search.n=3", "--cfg", "job")
    assert res.returncode == 0
    assert "name: demo" in res.stdout and "'n': 3" in res.stdout


@pytest.mark.slow
def test_multirun_makes_one_run_per_point(tmp_path, small_dataset, tiny_models):
    res = pipeline_run(
        "-m",
        "+experiment=demo",
        "search.n=1,2",
        "benchmark.max_scenarios=1",
        f"benchmark.root={small_dataset}",
        f"run_root={tmp_path}",
        f"generator.checkpoint={tiny_models['wan_i2v']}",
        f"reward.checkpoint={tiny_models['vjepa2']}",
        "tracking=disabled",
        f"evaluate.mask_cache={tmp_path / 'masks'}",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    runs = sorted((tmp_path / "demo").iterdir())
    assert len(runs) == 2
    counts = sorted(len(list(r.glob("sample/outputs/*/*.mp4"))) for r in runs)
    assert counts == [3, 6]  # 3 items (one scenario, three views) x n candidates
    assert res.stdout.count("Physics-IQ score: ") == 2
    # one sweep, named after the experiment and the time, lists both points in launch order
    (sweep,) = (tmp_path / "sweeps").glob("demo-*.jsonl")
    points = [json.loads(line) for line in sweep.read_text().splitlines()]
    assert [p["overrides"][1] for p in points] == ["search.n=1", "search.n=2"]
    assert sorted(p["run"] for p in points) == [f"demo/{r.name}" for r in runs]
    assert all(f"sweep: {sweep.stem}" in (r / "config.yaml").read_text() for r in runs)


def test_every_sweep_file_makes_valid_points(small_dataset, tiny_models):
    """Each conf/sweeps file names its sweep and sweeps keys of the config: every point of its grid
    composes and validates like a run would (the demo's groups, one value per key at a time)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from pipeline.config import register_configs, to_config

    register_configs()
    files = sorted((ROOT / "conf" / "sweeps").glob("*.yaml"))
    assert files
    base = [
        "+experiment=demo",
        f"benchmark.root={small_dataset}",
        f"generator.checkpoint={tiny_models['wan_i2v']}",
        f"reward.checkpoint={tiny_models['vjepa2']}",
    ]
    for path in files:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[*base, f"+sweeps={path.stem}"], return_hydra_config=True)
            params = OmegaConf.to_container(cfg.hydra.sweeper.params)
            assert cfg.sweep == path.stem and params, path
            for key, values in params.items():
                for value in str(values).split(","):
                    point = compose("config", overrides=[*base, f"+sweeps={path.stem}", f"{key}={value}"])
                    assert OmegaConf.select(point, key) is not None
                    to_config(point)
