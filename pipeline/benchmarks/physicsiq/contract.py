"""What a generator must hand to the Physics-IQ evaluator, and the inputs it conditions on.

Submission contract (google-deepmind/physics-IQ-benchmark: README.md, generated_videos/README.md): one mp4 per item named ``NNNN_<view>_<scenario>.mp4``,
exactly 5·fps frames at one uniform fps, container duration 5.000 s ± 1 ms. Frame k of the
output is compared with testing frame k, and the testing clip starts on the frame *after* the
switch frame; an i2v model whose first output frame reproduces the conditioning image should
therefore drop it (``drop_first=True``), which callers must decide and report.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from pipeline.video_io import VideoError, probe_video, write_video

from .layout import MASTER_FPS, BenchmarkItem, PhysicsIQDataset, fps_folder
from .resample import read_all_frames_cv2, resample_frames

DURATION_S = 5.0
DURATION_TOL_S = 0.001
CONDITIONING_S = 3.0


def submission_name(item: BenchmarkItem) -> str:
    return item.generated_video_name


def frames_needed(fps: float) -> int:
    n = 5 * fps
    if abs(n - round(n)) > 1e-9:
        raise ValueError(f"5 s at {fps} fps is not a whole number of frames")
    return int(round(n))


def conform_frames(frames: np.ndarray, fps: float, drop_first: bool) -> np.ndarray:
    """Exactly 5·fps frames: optionally drop the conditioning frame, then keep the first 5 s."""
    need = frames_needed(fps)
    frames = frames[1:] if drop_first else frames
    if len(frames) < need:
        raise ValueError(
            f"need {need} frames for 5 s at {fps} fps, got {len(frames)}"
            + (" after dropping the first frame" if drop_first else "")
        )
    return frames[:need]


def write_submission_video(path: str | os.PathLike, frames: np.ndarray, fps: float) -> Path:
    """Write a uint8 RGB (5·fps, H, W, 3) clip and check the duration the evaluator will see."""
    need = frames_needed(fps)
    if len(frames) != need:
        raise ValueError(f"a submission clip must have {need} frames at {fps} fps, got {len(frames)}")
    path = write_video(path, frames, fps)
    info = probe_video(path)
    if abs(info.duration - DURATION_S) > DURATION_TOL_S:
        raise VideoError(
            f"{path}: container duration {info.duration:.4f} s, the benchmark needs {DURATION_S} ± {DURATION_TOL_S} s"
        )
    return path


def fit_frame(rgb: np.ndarray, width: int, height: int, mode: str = "crop") -> np.ndarray:
    """Resize to width×height. 'crop': scale to cover, centre crop (aspect kept); 'stretch':
    plain resize. INTER_AREA when shrinking (no aliasing), bilinear when enlarging."""
    h, w = rgb.shape[:2]
    if mode == "stretch":
        sw, sh = width, height
    elif mode == "crop":
        scale = max(width / w, height / h)
        sw, sh = max(width, round(w * scale)), max(height, round(h * scale))
    else:
        raise ValueError(f"mode must be 'crop' or 'stretch', got {mode!r}")
    interp = cv2.INTER_AREA if sw * sh < w * h else cv2.INTER_LINEAR
    out = cv2.resize(rgb, (sw, sh), interpolation=interp)
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    return np.ascontiguousarray(out[y0 : y0 + height, x0 : x0 + width])


def condition_image(
    item_or_path, width: int, height: int, mode: str = "crop", dataset: PhysicsIQDataset | None = None
) -> np.ndarray:
    """The switch frame as uint8 H×W×3 RGB at the generator's size."""
    if isinstance(item_or_path, BenchmarkItem):
        if dataset is None:
            raise ValueError("condition_image needs the dataset to locate an item's switch frame")
        item_or_path = dataset.switch_frame(item_or_path)
    bgr = cv2.imread(str(item_or_path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise VideoError(f"cannot read switch frame {item_or_path}")
    return fit_frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), width, height, mode)


def condition_clip_from_file(
    path: str | os.PathLike, fps: float, width: int, height: int, mode: str = "crop"
) -> np.ndarray:
    """A conditioning clip file as uint8 (N, H, W, 3) RGB at ``fps`` and the generator's size.

    A clip recorded at another rate (the 30 FPS master) is blended down with the same rule as the
    ground-truth resampling, so condition and ground truth share one time axis."""
    bgr, fps_src = read_all_frames_cv2(path)
    if not fps_src:
        raise VideoError(f"OpenCV cannot read the fps of conditioning clip {path}")
    if abs(fps_src - fps) > 1e-6:
        bgr = resample_frames(bgr, fps_src, fps)
    return np.stack([fit_frame(np.ascontiguousarray(f[..., ::-1]), width, height, mode) for f in bgr])


def condition_clip(
    dataset: PhysicsIQDataset, item: BenchmarkItem, fps: float, width: int, height: int, mode: str = "crop"
) -> np.ndarray:
    """The 3 s conditioning clip (v2v) of an item at ``fps`` as uint8 (N, H, W, 3) RGB.

    Uses the shipped fps folder when it holds the clip, otherwise blends the 30 FPS clip down
    with the same rule as the ground-truth resampling.
    """
    shipped = dataset.conditioning_clip(item, fps)
    if float(fps).is_integer() and shipped.is_file():
        return condition_clip_from_file(shipped, fps, width, height, mode)
    src = dataset.conditioning_clip(item, MASTER_FPS)
    if not src.is_file():
        raise VideoError(f"no conditioning clip for {item.item_id} at {fps_folder(fps)} or 30FPS: {src}")
    return condition_clip_from_file(src, fps, width, height, mode)
