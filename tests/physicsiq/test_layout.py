"""Dataset layout: items, pairing, paths and validation messages."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from pipeline.benchmarks.physicsiq.layout import DatasetError, PhysicsIQDataset


def test_items_and_paths(dataset, dataset_root):
    assert len(dataset) == 6 and [it.item_id for it in dataset] == [f"{i:04d}" for i in range(1, 7)]
    it = dataset.items[0]
    assert it.scenario == "trimmed-ball-falls.mp4" and it.view == "perspective-left"
    assert it.take2_id == "0007" and it.generated_video_name == "0001_perspective-left_trimmed-ball-falls.mp4"
    assert it.description.endswith("Static shot with no camera movement.")
    assert dataset.switch_frame(it).name == "0001_switch-frames_anyFPS_perspective-left_trimmed-ball-falls.jpg"
    assert (
        dataset.testing_clip(it, 8, 2).name == "0007_testing-videos_8FPS_perspective-left_take-2_trimmed-ball-falls.mp4"
    )
    assert dataset.real_mask(it, 8).parts[-3:] == (
        "real",
        "8FPS",
        "0001_video-masks_8FPS_perspective-left_take-1_trimmed-ball-falls.mp4",
    )
    for p in (dataset.switch_frame(it), dataset.conditioning_clip(it, 8), dataset.testing_clip(it, 30, 2)):
        assert p.is_file(), p
    dataset.validate(8)
    dataset.validate(12)  # not shipped: will be resampled, so not "missing"


def test_pairing_uses_scenario_and_view(tmp_path, dataset_root):
    df = pd.read_csv(dataset_root / "descriptions.csv")
    (tmp_path / "ds").mkdir()
    df.iloc[::-1].to_csv(tmp_path / "ds" / "descriptions.csv", index=False)  # order must not matter
    ds = PhysicsIQDataset(tmp_path / "ds")
    assert {it.item_id: it.take2_id for it in ds} == {f"{i:04d}": f"{i + 6:04d}" for i in range(1, 7)}


def test_missing_root_is_one_sentence(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        PhysicsIQDataset(tmp_path / "nope")


def test_descriptions_beside_root(tmp_path, dataset_root):
    (tmp_path / "descriptions").mkdir()
    shutil.copy(dataset_root / "descriptions.csv", tmp_path / "descriptions" / "descriptions.csv")
    (tmp_path / "physics-IQ-benchmark").mkdir()
    ds = PhysicsIQDataset(tmp_path / "physics-IQ-benchmark")
    assert ds.descriptions_path == tmp_path / "descriptions" / "descriptions.csv"
    with pytest.raises(DatasetError) as err:
        ds.validate()
    msg = str(err.value)
    assert "24 file(s) missing" in msg and "... and 14 more" in msg
    assert "switch-frames/0001_switch-frames_anyFPS_perspective-left_trimmed-ball-falls.jpg" in msg


def test_validate_names_missing_file(tmp_path, dataset_root):
    root = tmp_path / "copy"
    shutil.copytree(dataset_root, root, ignore=shutil.ignore_patterns("full-videos", ".cache"))
    victim = next((root / "split-videos" / "testing" / "8FPS").glob("0008_*"))
    victim.unlink()
    ds = PhysicsIQDataset(root)
    ds.validate()  # 30 FPS data is complete
    with pytest.raises(DatasetError, match="1 file\\(s\\) missing") as err:
        ds.validate(8)
    assert victim.name in str(err.value)
