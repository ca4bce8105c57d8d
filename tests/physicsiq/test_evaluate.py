"""End-to-end evaluation on the tiny synthetic dataset, and submission validation."""

from __future__ import annotations

import hashlib
import json
import shutil

import cv2
import numpy as np
import pytest

from pipeline.benchmarks.physicsiq.evaluator import SubmissionError, evaluate_folder
from pipeline.benchmarks.physicsiq.iq_score import CSV_COLUMNS
from pipeline.video_io import write_video

from .conftest import FPS, make_submission


def _snapshot(folder):
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())
    }


@pytest.fixture(scope="module")
def take2_result(dataset, dataset_root, mask_cache, tmp_path_factory):
    gen = make_submission(
        dataset, tmp_path_factory.mktemp("m") / "take2-model", lambda it: dataset.testing_clip(it, FPS, 2)
    )
    before = _snapshot(gen)
    result = evaluate_folder(dataset_root, gen, tmp_path_factory.mktemp("out"), workers=2, mask_cache=mask_cache)
    return result, gen, before


def test_take2_as_generation_is_100(take2_result):
    result, _, _ = take2_result
    assert result.fps == FPS
    assert result.score == pytest.approx(100.0, abs=0.01)
    assert result.score_view == pytest.approx(100.0, abs=0.01)


def test_outputs_written(take2_result):
    result, _, _ = take2_result
    assert result.files["csv"].name == "take2-model.csv"
    header = result.files["csv"].read_text().splitlines()[0].split(",")
    assert header == CSV_COLUMNS and len(header) == 37
    payload = json.loads(result.files["json"].read_text())
    assert payload["physics_iq_score"] == result.score and payload["fps"] == FPS
    assert result.files["plot"].stat().st_size > 1000
    assert set(result.categories["category"]) == {"Solid Mechanics", "Magnetism"}


def test_generated_folder_untouched(take2_result):
    _, gen, before = take2_result
    assert _snapshot(gen) == before


def test_ground_truth_is_100(dataset, dataset_root, mask_cache, tmp_path):
    gen = make_submission(dataset, tmp_path / "gt", lambda it: dataset.testing_clip(it, FPS, 1))
    assert evaluate_folder(dataset_root, gen, tmp_path / "out", mask_cache=mask_cache).score == 100.0


def test_noise_is_about_zero(dataset, dataset_root, mask_cache, tmp_path):
    rng = np.random.default_rng(0)
    gen = make_submission(
        dataset, tmp_path / "noise", lambda it: rng.integers(0, 256, (5 * FPS, 64, 96, 3), dtype=np.uint8)
    )
    assert evaluate_folder(dataset_root, gen, tmp_path / "out", mask_cache=mask_cache).score < 1.0


def test_static_switch_frame_is_well_below_50(dataset, dataset_root, mask_cache, tmp_path):
    def still(it):
        rgb = cv2.cvtColor(cv2.imread(str(dataset.switch_frame(it))), cv2.COLOR_BGR2RGB)
        return np.repeat(rgb[None], 5 * FPS, axis=0)

    gen = make_submission(dataset, tmp_path / "still", still)
    score = evaluate_folder(dataset_root, gen, tmp_path / "out", mask_cache=mask_cache).score
    assert 0.0 <= score < 45.0


def test_submission_problems_are_listed_by_name(dataset, dataset_root, tmp_path):
    gen = make_submission(dataset, tmp_path / "bad", lambda it: dataset.testing_clip(it, FPS, 2))
    files = sorted(gen.iterdir())
    files[1].unlink()  # missing id 0002
    write_video(files[2], np.zeros((6 * FPS, 64, 96, 3), np.uint8), FPS)  # 6 s long
    files[3].write_bytes(b"not a video at all")  # corrupt
    before = _snapshot(gen)
    with pytest.raises(SubmissionError) as err:
        evaluate_folder(dataset_root, gen, tmp_path / "out")
    msg = str(err.value)
    assert "missing ids (1): 0002" in msg and "found 5" in msg
    assert files[2].name in msg and "6.0000 s" in msg
    assert files[3].name in msg and "not decodable" in msg
    assert _snapshot(gen) == before


def test_mixed_fps_is_rejected(dataset, dataset_root, tmp_path):
    gen = make_submission(dataset, tmp_path / "mixed", lambda it: dataset.testing_clip(it, FPS, 2))
    odd = sorted(gen.iterdir())[0]
    write_video(odd, np.zeros((80, 64, 96, 3), np.uint8), 16)
    with pytest.raises(SubmissionError, match="fps differs"):
        evaluate_folder(dataset_root, gen, tmp_path / "out")


def test_unshipped_fps_is_resampled(dataset, dataset_root, mask_cache, tmp_path):
    # 10 fps is not in the tiny dataset: ground truth is rebuilt from 30 FPS into the cache
    root = tmp_path / "ds"
    shutil.copytree(dataset_root, root, ignore=shutil.ignore_patterns("full-videos", ".cache"))
    from pipeline.benchmarks.physicsiq.layout import PhysicsIQDataset
    from pipeline.benchmarks.physicsiq.resample import ensure_testing_clips

    ds = PhysicsIQDataset(root)
    ensure_testing_clips(ds, 10)
    gen = tmp_path / "g10"
    gen.mkdir()
    for it in ds:
        shutil.copy(ds.testing_clip(it, 10, 2), gen / f"{it.item_id}_x.mp4")
    result = evaluate_folder(root, gen, tmp_path / "out", mask_cache=mask_cache)
    assert result.fps == 10 and result.score == pytest.approx(100.0, abs=0.01)
    assert ds.testing_clip(ds.items[0], 10).is_relative_to(root / ".cache")


def test_videos_that_fail_in_the_metric_jobs_are_listed_together(dataset, dataset_root, tmp_path, monkeypatch):
    # validation reads containers only; a file that gets past it but does not decode must still
    # be named, together with every other such file, and nothing may be written
    from pipeline.benchmarks.physicsiq import evaluator as ev

    gen = make_submission(dataset, tmp_path / "late-bad", lambda it: dataset.testing_clip(it, FPS, 2))
    files = sorted(gen.iterdir())
    for f in (files[0], files[4]):
        f.write_bytes(b"\x00" * 4096)
    monkeypatch.setattr(ev, "_check_file", lambda path: (float(FPS), None))
    with pytest.raises(SubmissionError) as err:
        evaluate_folder(dataset_root, gen, tmp_path / "out")
    msg = str(err.value)
    assert "2 of 6 videos could not be evaluated" in msg
    assert files[0].name in msg and files[4].name in msg
    assert not (tmp_path / "out").exists()
