"""Session fixtures shared by the pipeline tests: tiny random models and a small synthetic
Physics-IQ dataset, both made on the fly (nothing is downloaded), plus Hydra composition."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_SILENT", "true")
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    from pipeline.tiny_models import make_tiny_models

    return make_tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """Two scenarios (6 items) at low resolution: enough for the chain, fast to make."""
    from pipeline.benchmarks.physicsiq.synthetic import SyntheticParams, generate

    root = tmp_path_factory.mktemp("physicsiq") / "physics-IQ-benchmark"
    generate(root, SyntheticParams(scenarios=2, width=128, height=72, fps=(8,)))
    return root


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    """The predicate's first truthy value, polled every ``interval`` seconds."""
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from pipeline.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


@pytest.fixture
def demo_overrides(tiny_models, small_dataset, tmp_path) -> list[str]:
    return demo_args(tiny_models, small_dataset, tmp_path)


def demo_args(tiny_models, small_dataset, tmp_path) -> list[str]:
    """The demo on the tiny models and the small dataset, its runs under ``tmp_path / "runs"``."""
    return [
        "+experiment=demo",
        f"run_root={tmp_path / 'runs'}",
        f"benchmark.root={small_dataset}",
        f"generator.checkpoint={tiny_models['wan_i2v']}",
        f"reward.checkpoint={tiny_models['vjepa2']}",
        "tracking=disabled",
        "evaluate.workers=1",
        f"evaluate.mask_cache={tmp_path / 'masks'}",
    ]


@pytest.fixture
def one_scenario(demo_overrides) -> list[str]:
    """The demo on one scenario (three items): a chain short enough to run many times."""
    return [*demo_overrides, "benchmark.max_scenarios=1"]
