"""Motion masks against a plain per-frame loop of the documented steps, and the content cache."""

from __future__ import annotations

import shutil

import cv2
import numpy as np

from pipeline.benchmarks.physicsiq.masks import MaskCache, motion_masks


def _reference_masks(frames):
    """google-deepmind/physics-IQ-benchmark: code/binary_mask_generator.py, written out step by step."""
    out, bg = [], None
    kernel = np.ones((5, 5), np.uint8)
    for f in frames:
        g = cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), (5, 5), 0)
        if bg is None:
            bg = g.astype("float")
            out.append(np.zeros_like(g))
            continue
        cv2.accumulateWeighted(g, bg, 0.3)
        d = cv2.absdiff(g, cv2.convertScaleAbs(bg))
        m = np.where(d > 10, 255, 0).astype(np.uint8)
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, kernel)
        out.append(cv2.morphologyEx(m, cv2.MORPH_CLOSE, kernel))
    return out


def _clip(seed, n=12, h=48, w=64):
    rng = np.random.default_rng(seed)
    bg = rng.integers(90, 160, (h, w, 3), dtype=np.uint8)
    frames = []
    for t in range(n):
        f = bg.copy()
        cv2.circle(f, (8 + 4 * t, 24), 7, (10, 20, 240), -1)
        f = np.clip(f.astype(int) + rng.integers(-3, 4, f.shape), 0, 255).astype(np.uint8)
        frames.append(f)
    return frames


def test_masks_equal_reference_loop():
    for seed in range(3):
        frames = _clip(seed)
        got = list(motion_masks(frames))
        ref = _reference_masks(frames)
        assert len(got) == len(ref)
        assert not got[0].any()
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b)
        assert any(m.any() for m in got[1:])  # the moving disc is found


def test_masks_of_synthetic_clip(dataset):
    item = dataset.items[0]
    cap = cv2.VideoCapture(str(dataset.testing_clip(item, 30)))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    for a, b in zip(motion_masks(frames), _reference_masks(frames)):
        np.testing.assert_array_equal(a, b)


def test_cache_is_content_keyed(dataset, tmp_path):
    items = dataset.items
    video = tmp_path / "clip.mp4"
    shutil.copy(dataset.testing_clip(items[0], 8), video)
    cache = MaskCache(tmp_path / "cache")
    first = cache.get(video)
    stamp = first.stat().st_mtime_ns
    assert cache.get(video) == first and first.stat().st_mtime_ns == stamp  # reused, not rebuilt
    renamed = tmp_path / "other-name.mp4"
    shutil.copy(video, renamed)
    assert cache.get(renamed) == first  # same bytes, same entry whatever the name
    shutil.copy(dataset.testing_clip(items[1], 8), video)  # new content under the old name
    second = cache.get(video)
    assert second != first and second.is_file()
    cap = cv2.VideoCapture(str(second))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 40 and round(cap.get(cv2.CAP_PROP_FPS)) == 8
    cap.release()
