"""Per (scenario, view) Physics-IQ metrics (physicsiq.md §3.2-3.3).

Every number reproduces the official arithmetic: frames decoded by cv2.VideoCapture (BGR),
cv2.resize bilinear to the take-1 size // 4, RGB/255 in float64 then float32 differences for
MSE (per-frame np.mean on a contiguous frame, so the float32 summation order is the same),
masks binarised with > 127 after the resize on all three decoded channels, IoU(empty, empty) = 1.
Videos are streamed in chunks of frames: only accumulators for the whole clip are kept.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from pipeline.video_io import VideoError

CHUNK = 16


@dataclass(frozen=True)
class ViewInputs:
    take1: str | os.PathLike
    take2: str | os.PathLike
    generated: str | os.PathLike
    mask1: str | os.PathLike
    mask2: str | os.PathLike
    mask_generated: str | os.PathLike


def first_frame_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of the first decoded frame."""
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read() if cap.isOpened() else (False, None)
    cap.release()
    if not ok:
        raise VideoError(f"cannot decode the first frame of {path}")
    return frame.shape[1], frame.shape[0]


def iter_chunks(path: str | os.PathLike, size: tuple[int, int], limit: int, chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """Resized uint8 BGR frames with index < limit, as (k, h, w, 3) arrays."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"OpenCV cannot open video {path}")
    try:
        buf: list[np.ndarray] = []
        n = 0
        while n < limit:
            ok, frame = cap.read()
            if not ok:
                break
            buf.append(cv2.resize(frame, size))
            n += 1
            if len(buf) == chunk:
                yield np.stack(buf)
                buf = []
        if buf:
            yield np.stack(buf)
    finally:
        cap.release()


def _lockstep(paths: list, size: tuple[int, int], limit: int) -> Iterator[tuple[np.ndarray, ...]]:
    """Chunks of several videos side by side; unequal frame counts are an error, not a zip."""
    iters = [iter_chunks(p, size, limit) for p in paths]
    counts = [0] * len(paths)
    while True:
        chunks = [next(it, None) for it in iters]
        for i, c in enumerate(chunks):
            counts[i] += 0 if c is None else len(c)
        if all(c is None for c in chunks):
            break
        if any(c is None for c in chunks) or len({len(c) for c in chunks}) != 1:
            for i, it in enumerate(iters):  # finish counting for the message
                counts[i] += sum(len(c) for c in it)
            raise VideoError("videos have different frame counts within the evaluation window: "
                             + ", ".join(f"{os.fspath(p)}={n}" for p, n in zip(paths, counts)))
        yield tuple(chunks)
    if counts[0] == 0:
        raise VideoError(f"no frames decoded from {paths}")


def _iou_frames(a: np.ndarray, b: np.ndarray) -> list[float]:
    axes = tuple(range(1, a.ndim))
    inter = np.logical_and(a, b).sum(axis=axes)
    union = np.logical_or(a, b).sum(axis=axes)
    return [1.0 if u == 0 else float(i / u) for i, u in zip(inter, union)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return _iou_frames(a[None], b[None])[0]


def _mse_frames(a: np.ndarray, b: np.ndarray) -> list[float]:
    sq = ((a / 255.0).astype(np.float32) - (b / 255.0).astype(np.float32)) ** 2
    return [float(np.mean(sq[i])) for i in range(len(sq))]


def _weighted_iou_masked(w1: np.ndarray, w2: np.ndarray) -> float:
    # official v1/v2 form: sums over the pixels where either mask moves (1-D gather)
    inter, union = np.minimum(w1, w2), np.maximum(w1, w2)
    valid = union > 0
    if not valid.any():
        return 1.0
    return float(np.sum(inter[valid]) / np.sum(union[valid]))


def _weighted_iou_full(w1: np.ndarray, w2: np.ndarray) -> float:
    # official physical-variance form: sums over the whole frame (a different summation order)
    union_sum = np.sum(np.maximum(w1, w2))
    return 1.0 if union_sum == 0 else float(np.sum(np.minimum(w1, w2)) / union_sum)


def view_metrics(inputs: ViewInputs, fps: float) -> dict[str, object]:
    """The 12 official metrics of one view, keyed by column stem (without ``_{view}``)."""
    size = tuple(s // 4 for s in first_frame_size(inputs.take1))
    if min(size) < 1:
        raise VideoError(f"{inputs.take1}: too small for the //4 evaluation grid")
    limit = int(np.ceil(5 * fps))  # frames with index < 5·fps (fps may be fractional)

    mse = {"v1": [], "v2": [], "var": []}
    for r1, r2, g in _lockstep([inputs.take1, inputs.take2, inputs.generated], size, limit):
        mse["v1"] += _mse_frames(r1, g)
        mse["v2"] += _mse_frames(r2, g)
        mse["var"] += _mse_frames(r1, r2)

    st = {"v1": [], "v2": [], "var": []}
    any_m = [None, None, None]  # spatial (max over time) masks of take-1, take-2, generated
    sum_m = [None, None, None]  # per-pixel count of moving frames, for the weighted masks
    n = 0
    for chunks in _lockstep([inputs.mask1, inputs.mask2, inputs.mask_generated], size, limit):
        m1, m2, mg = (c > 127 for c in chunks)
        st["v1"] += _iou_frames(m1, mg)
        st["v2"] += _iou_frames(m2, mg)
        st["var"] += _iou_frames(m1, m2)
        for i, m in enumerate((m1, m2, mg)):
            s = m.sum(axis=0, dtype=np.uint16)
            sum_m[i] = s if sum_m[i] is None else sum_m[i] + s
        n += len(m1)
    if n != len(mse["v1"]):
        raise VideoError(f"mask videos have {n} frames in the window but the clips have "
                         f"{len(mse['v1'])} ({inputs.mask1})")
    any_m = [s > 0 for s in sum_m]
    w1, w2, wg = (s / n for s in sum_m)
    return {
        "v1_mse": mse["v1"],
        "v2_mse": mse["v2"],
        "variance_spatial": _iou(any_m[0], any_m[1]),
        "variance_weighted_spatial": _weighted_iou_full(w1, w2),
        "variance_spatiotemporal_iou": st["var"],
        "variance_mse": mse["var"],
        "spatiotemporal_iou_v1": st["v1"],
        "spatiotemporal_iou_v2": st["v2"],
        "spatial_iou_v1": _iou(any_m[0], any_m[2]),
        "spatial_iou_v2": _iou(any_m[1], any_m[2]),
        "weighted_spatial_iou_v1": _weighted_iou_masked(w1, wg),
        "weighted_spatial_iou_v2": _weighted_iou_masked(w2, wg),
    }
