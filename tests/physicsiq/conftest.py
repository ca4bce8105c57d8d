"""A tiny synthetic Physics-IQ dataset, made once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.benchmarks.physicsiq.contract import write_submission_video
from pipeline.benchmarks.physicsiq.layout import PhysicsIQDataset
from pipeline.benchmarks.physicsiq.synthetic import SyntheticParams, generate

FPS = 8
PARAMS = SyntheticParams(scenarios=2, seed=0, width=256, height=144, fps=(FPS,))


@pytest.fixture(scope="session")
def dataset_root(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("piq") / "physics-IQ-benchmark", PARAMS)


@pytest.fixture(scope="session")
def dataset(dataset_root) -> PhysicsIQDataset:
    return PhysicsIQDataset(dataset_root)


@pytest.fixture(scope="session")
def mask_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mask-cache")


def make_submission(dataset: PhysicsIQDataset, out: Path, source) -> Path:
    """A generation folder; ``source(item)`` returns a path to copy or RGB frames to write."""
    out.mkdir(parents=True, exist_ok=True)
    for item in dataset:
        got = source(item)
        name = f"{item.item_id}_model-output.mp4"  # only the prefix may be relied upon
        if isinstance(got, (str, Path)):
            shutil.copy(got, out / name)
        else:
            write_submission_video(out / name, np.asarray(got, np.uint8), FPS)
    return out
