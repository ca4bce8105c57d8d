"""Ground truth at an fps that is not shipped, built the way the official ``fps_changer`` does.

Arithmetic copied in behaviour (not code): keep the first min(5 s, duration) of the source,
make int(duration·fps_new) frames, frame j blends source frames floor(p) and floor(p)+1 at
p = j·(N_src−1)/(N_new−1) in float32, and truncates to uint8 (no rounding). The first and last
frames stay aligned, so the time axis is slightly stretched. Output sizes are cut down to even.
We write H.264 with our own writer because pip OpenCV has no avc1 encoder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from pipeline.video_io import VideoError, write_video

MAX_SECONDS = 5.0


def blend_positions(n_src: int, n_new: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower index, upper index, weight of upper) for each output frame."""
    if n_new < 1 or n_src < 1:
        raise ValueError(f"cannot resample {n_src} frames to {n_new}")
    if n_new == 1:  # the official formula divides by zero here; take the first frame
        return np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1)
    pos = np.array([j * (n_src - 1) / (n_new - 1) for j in range(n_new)])  # same float64 ops
    lo = pos.astype(np.int64)
    return lo, np.minimum(lo + 1, n_src - 1), pos - lo


def blend_frames(frames: np.ndarray, n_new: int) -> np.ndarray:
    """n_new frames linearly blended from uint8 ``frames`` (N, H, W, C), ends aligned."""
    lo, hi, w = blend_positions(len(frames), n_new)
    out = np.empty((n_new,) + frames.shape[1:], np.uint8)
    for j in range(n_new):
        # float32 frames times float64 weights cast to float32 (numpy's rule for python
        # scalars), then truncation to uint8, as the official code does
        a = frames[lo[j]].astype(np.float32)
        b = frames[hi[j]].astype(np.float32)
        out[j] = (np.float32(1 - w[j]) * a + np.float32(w[j]) * b).astype(np.uint8)
    return out


def resample_frames(frames: np.ndarray, fps_src: float, fps_new: float) -> np.ndarray:
    """Resample uint8 frames (N, H, W, C) recorded at fps_src to fps_new (first <=5 s)."""
    duration = min(MAX_SECONDS, len(frames) / fps_src)
    frames = frames[: int(duration * fps_src)]
    return blend_frames(frames, int(duration * fps_new))


def read_all_frames_cv2(path: str | os.PathLike, limit: int | None = None) -> tuple[np.ndarray, float]:
    """Decode with OpenCV (BGR), as the official scripts do; returns (frames, CAP_PROP_FPS)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"OpenCV cannot open video {path}")
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        frames: list[np.ndarray] = []
        while limit is None or len(frames) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    if not frames:
        raise VideoError(f"no frames decoded from {path}")
    return np.stack(frames), fps


def resample_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    fps_new: float,
    writer: Callable[[Path, np.ndarray, float], Path] = write_video,
) -> Path:
    """Resample a video file; ``writer(path, rgb_frames, fps)`` writes the result."""
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise VideoError(f"OpenCV cannot open video {src}")
    fps_src = cap.get(cv2.CAP_PROP_FPS)
    n_header = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    # The official reads int(min(5, header duration)·fps) frames, driven by the header count.
    duration = min(MAX_SECONDS, n_header / fps_src)
    frames, _ = read_all_frames_cv2(src, limit=int(duration * fps_src))
    h, w = frames.shape[1] - frames.shape[1] % 2, frames.shape[2] - frames.shape[2] % 2
    frames = frames[:, :h, :w]
    # output count from the header duration, blend positions from the frames actually decoded
    out = blend_frames(frames, int(duration * fps_new))
    return writer(Path(dst), np.ascontiguousarray(out[..., ::-1]), fps_new)  # BGR -> RGB


def ensure_testing_clips(dataset, fps: float) -> list[Path]:
    """Make sure take-1/take-2 testing clips exist at ``fps``; resample the 30 FPS ones if not."""
    made = []
    for item in dataset.items:
        for take in (1, 2):
            if dataset.testing_clip(item, fps, take).is_file():
                continue
            src = dataset.shipped_testing_clip(item, 30, take)
            if not src.is_file():
                raise VideoError(f"cannot build {fps} fps ground truth: 30 FPS clip missing: {src}")
            made.append(resample_video(src, dataset.resampled_testing_clip(item, fps, take), fps))
    return made
