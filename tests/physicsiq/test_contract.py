"""Submission helpers, conditioning inputs and the resampling arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.benchmarks.physicsiq.contract import (
    condition_clip,
    condition_image,
    conform_frames,
    submission_name,
    write_submission_video,
)
from pipeline.benchmarks.physicsiq.resample import blend_positions, resample_frames
from pipeline.video_io import probe_video


def test_conform_frames():
    frames = np.arange(45)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    out = conform_frames(frames, 8, drop_first=True)
    assert len(out) == 40 and out[0, 0, 0, 0] == 1
    assert conform_frames(frames, 8, drop_first=False)[0, 0, 0, 0] == 0
    with pytest.raises(ValueError, match="need 80 frames"):
        conform_frames(frames, 16, drop_first=False)


def test_write_submission_video(tmp_path):
    path = write_submission_video(tmp_path / "0001_x.mp4", np.zeros((40, 32, 48, 3), np.uint8), 8)
    assert abs(probe_video(path).duration - 5.0) <= 0.001
    with pytest.raises(ValueError, match="must have 40 frames"):
        write_submission_video(tmp_path / "0002_x.mp4", np.zeros((39, 32, 48, 3), np.uint8), 8)


def test_condition_inputs(dataset):
    item = dataset.items[0]
    assert submission_name(item) == item.generated_video_name
    img = condition_image(item, 64, 64, dataset=dataset)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert condition_image(dataset.switch_frame(item), 100, 40, mode="stretch").shape == (40, 100, 3)
    shipped = condition_clip(dataset, item, 8, 80, 48)  # shipped 8FPS conditioning clip
    assert shipped.shape == (24, 48, 80, 3)
    built = condition_clip(dataset, item, 12, 80, 48)  # not shipped: blended from 30 FPS
    assert built.shape == (36, 48, 80, 3)


def test_resample_arithmetic():
    lo, hi, w = blend_positions(150, 40)
    assert lo[0] == 0 and hi[-1] == 149 and w[0] == 0
    assert (39 * 149 / 39) == 149.0 and np.isclose(lo[1] + w[1], 149 / 39)  # step 3.82, not 3.75
    frames = np.zeros((4, 1, 1, 1), np.uint8)
    frames[:, 0, 0, 0] = [0, 10, 20, 255]
    # 4 frames at 4 fps -> 1 s; to 3 fps: positions 0, 1.5, 3; blends truncate toward zero
    out = resample_frames(frames, 4, 3)[:, 0, 0, 0]
    assert list(out) == [0, 15, 255]
    frames[:, 0, 0, 0] = [0, 7, 20, 255]
    assert resample_frames(frames, 4, 3)[1, 0, 0, 0] == 13  # 13.5 truncated
