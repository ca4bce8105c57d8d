"""Per (scenario, view) Physics-IQ metrics (physicsiq.md §3.2-3.3), vectorised and cached.

Every number reproduces the official arithmetic: frames decoded by cv2.VideoCapture (BGR),
cv2.resize bilinear to the take-1 size // 4, RGB/255 in float64 then float32 differences for
MSE (per-frame mean over a contiguous frame, so the float32 summation order is the same), masks
from the mp4v round trip binarised with > 127 after the resize on all three decoded channels,
IoU(empty, empty) = 1.

Speed: each video is decoded once. Its *grid clip* -- the resized frames and the binarised
resized masks, i.e. everything the metrics read -- is built in one streaming pass (masks at
native resolution, written to mp4v and read back, as the official evaluator does). Grid clips of
the real take-1/take-2 testing clips are cached on disk keyed by the clip's bytes, the grid, the
frame window and the mask parameters, so later evaluations (any model, same fps) never decode
the ground truth again; the metrics then run on whole arrays, a few frames at a time.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.store import file_digest
from pipeline.video_io import VideoError

from .masks import CACHE_VERSION, MaskCache, MaskParams, iter_video_bgr, motion_masks, write_mask_video

CHUNK = 16  # frames per vectorised step: bounds the float temporaries


def first_frame_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of the first decoded frame."""
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read() if cap.isOpened() else (False, None)
    cap.release()
    if not ok:
        raise VideoError(f"cannot decode the first frame of {path}")
    return frame.shape[1], frame.shape[0]


def window(fps: float) -> int:
    """Frames with index < 5·fps are compared (fps may be fractional)."""
    return int(np.ceil(5 * fps))


def video_fps(path: str | os.PathLike) -> float:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    if not fps:
        raise VideoError(f"OpenCV cannot read the fps of {path}")
    return fps


# --- grid clips -------------------------------------------------------------------------------
@dataclass
class GridClip:
    """A video on the evaluation grid: what the metrics read."""

    rgb: np.ndarray  # (T, h, w, 3) uint8, BGR as decoded (channel order does not matter)
    mask: np.ndarray  # (T, h, w, 3) bool: resized mask > 127
    key: str = ""  # GroundTruthCache key (real clips only)

    def __len__(self) -> int:
        return len(self.rgb)


def _grid_masks(mask_video: str | os.PathLike, grid: tuple[int, int], limit: int) -> np.ndarray:
    out = []
    for i, frame in enumerate(iter_video_bgr(mask_video)):
        if i >= limit:
            break
        out.append(cv2.resize(frame, grid) > 127)
    if not out:
        raise VideoError(f"no frames decoded from mask video {mask_video}")
    return np.stack(out)


def build_grid_clip(video: str | os.PathLike, grid: tuple[int, int], limit: int,
                    mask_video: str | os.PathLike | None = None, mask_cache: MaskCache | None = None,
                    params: MaskParams = MaskParams()) -> GridClip:
    """Decode ``video`` once: resized frames of the window, and its motion masks.

    Masks come from ``mask_video`` when given (shipped real masks), else from ``mask_cache`` when
    it holds them, else they are computed from the same decoded frames, written to mp4v (into
    ``mask_cache`` if given, else a temporary file) and read back."""
    cached = mask_cache.path_for(video) if mask_cache is not None and mask_video is None else None
    need_masks = mask_video is None and not (cached is not None and cached.is_file())
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    if not fps:
        cap.release()
        raise VideoError(f"OpenCV cannot open {video} or read its fps")
    rgb: list[np.ndarray] = []

    def frames():
        try:
            i = 0
            while need_masks or i < limit:
                ok, frame = cap.read()
                if not ok:
                    return
                if i < limit:
                    rgb.append(cv2.resize(frame, grid))
                i += 1
                yield frame
        finally:
            cap.release()

    if need_masks:
        # masks over the whole video, like the official generator (the window is its prefix)
        if cached is not None:
            mask_video = write_mask_video(cached, motion_masks(frames(), params), fps)
        else:
            fd, tmp = tempfile.mkstemp(suffix=".mp4")
            os.close(fd)
            try:
                write_mask_video(tmp, motion_masks(frames(), params), fps)
                return GridClip(_stack(rgb, video), _grid_masks(tmp, grid, limit))
            finally:
                os.unlink(tmp)
    else:
        for _ in frames():
            pass
        mask_video = mask_video if mask_video is not None else cached
    return GridClip(_stack(rgb, video), _grid_masks(mask_video, grid, limit))


def _stack(frames: list[np.ndarray], path) -> np.ndarray:
    if not frames:
        raise VideoError(f"no frames decoded from {path}")
    return np.stack(frames)


class GroundTruthCache:
    """Grid clips of real testing clips, keyed by content (clip bytes, shipped mask bytes), grid,
    window and mask parameters; stored as .npy (frames memory-mapped when read, masks packed).

    Disk: T·(W/4)·(H/4)·3 bytes of frames per clip (e.g. 1080p clips at 16 fps: 31 MB per clip).
    File digests are memoised by (path, size, mtime) so a warm run does not rehash the dataset.
    """

    def __init__(self, cache_dir: str | os.PathLike, params: MaskParams = MaskParams()):
        self.cache_dir = Path(cache_dir)
        self.params = params

    # digest and first-frame size of large, unchanging files, memoised by their stat
    def info(self, path: str | os.PathLike) -> dict:
        path = Path(path).resolve()
        st = path.stat()
        stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}
        memo = self.cache_dir / "digests" / (hashlib.sha1(str(path).encode()).hexdigest() + ".json")
        try:
            entry = json.loads(memo.read_text())
            if entry["stamp"] == stamp:
                return entry
        except (OSError, ValueError, KeyError):
            pass
        entry = {"path": str(path), "stamp": stamp, "sha256": file_digest(path),
                 "size": list(first_frame_size(path))}
        _atomic_write(memo, json.dumps(entry).encode())
        return entry

    def digest(self, path: str | os.PathLike) -> str:
        return self.info(path)["sha256"]

    def frame_size(self, path: str | os.PathLike) -> tuple[int, int]:
        """(width, height) of the first decoded frame."""
        return tuple(self.info(path)["size"])

    def key(self, clip, grid: tuple[int, int], limit: int, mask_video=None) -> str:
        meta = json.dumps({"v": CACHE_VERSION, "kind": "grid", "params": asdict(self.params),
                           "opencv": cv2.__version__, "grid": list(grid), "limit": limit,
                           "clip": self.digest(clip),
                           "mask": self.digest(mask_video) if mask_video is not None else None},
                          sort_keys=True)
        return hashlib.sha256(meta.encode()).hexdigest()

    def get(self, clip, grid: tuple[int, int], limit: int, mask_video=None) -> GridClip:
        k = self.key(clip, grid, limit, mask_video)
        base = self.cache_dir / "grid" / k[:2] / k
        rgb_path, mask_path = base.with_suffix(".rgb.npy"), base.with_suffix(".mask.npy")
        if rgb_path.is_file() and mask_path.is_file():
            try:
                rgb = np.load(rgb_path, mmap_mode="r")
                packed = np.load(mask_path)
                mask = np.unpackbits(packed, axis=-1, count=rgb.shape[-2] * 3).reshape(rgb.shape).astype(bool)
                return GridClip(rgb, mask, k)
            except (OSError, ValueError):
                pass  # a damaged entry is rebuilt
        got = build_grid_clip(clip, grid, limit, mask_video=mask_video, params=self.params)
        if got.mask.shape != got.rgb.shape:
            raise VideoError(f"{clip}: {len(got.mask)} mask frames but {len(got.rgb)} frames in the window")
        packed = np.packbits(got.mask.reshape(len(got), got.rgb.shape[1], -1), axis=-1)
        _atomic_npy(mask_path, packed)
        _atomic_npy(rgb_path, got.rgb)  # written last: the pair is complete when it exists
        got.key = k
        return got

    def variance(self, take1: GridClip, take2: GridClip) -> dict:
        """The four take-1 vs take-2 metrics (they do not depend on the model), cached per pair."""
        k = hashlib.sha256(f"{take1.key}|{take2.key}".encode()).hexdigest()
        path = self.cache_dir / "variance" / k[:2] / f"{k}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass
        got = variance_metrics(take1, take2)
        _atomic_write(path, json.dumps(got).encode())  # floats round-trip exactly through JSON
        return got


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _atomic_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npy", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        np.save(f, np.ascontiguousarray(array))
    os.replace(tmp, path)


# --- metrics on grid clips --------------------------------------------------------------------
def iou_frames(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Per-frame IoU of (T, ...) boolean masks; 1.0 where both are empty."""
    axes = tuple(range(1, a.ndim))
    inter = np.logical_and(a, b).sum(axis=axes)
    union = np.logical_or(a, b).sum(axis=axes)
    return [1.0 if u == 0 else float(i / u) for i, u in zip(inter.tolist(), union.tolist())]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return iou_frames(a[None], b[None])[0]


# (float32(a/255) - float32(b/255))**2 for every pair of uint8 values, computed with exactly the
# official element operations (float64 division, cast to float32, float32 difference and square):
# a table lookup gives the same bits as the arithmetic, at a fraction of the cost.
_UNIT = (np.arange(256) / 255.0).astype(np.float32)
_SQUARED_DIFF = ((_UNIT[:, None] - _UNIT[None, :]) ** 2).ravel()


def mse_frames(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Per-frame MSE of (T, h, w, 3) uint8 clips on [0, 1] with float32 differences; each frame's
    mean is numpy's float32 pairwise sum over the contiguous frame, as the official per-frame
    ``np.mean`` (tests check the equality)."""
    out: list[float] = []
    for s in range(0, len(a), CHUNK):
        idx = np.asarray(a[s:s + CHUNK]).astype(np.uint16)
        idx <<= 8
        idx |= np.asarray(b[s:s + CHUNK])
        sq = np.take(_SQUARED_DIFF, idx)
        out += sq.reshape(len(sq), -1).mean(axis=1).tolist()
    return out


def weighted_iou_masked(w1: np.ndarray, w2: np.ndarray) -> float:
    # official model-side form: sums over the pixels where either mask moves (1-D gather)
    inter, union = np.minimum(w1, w2), np.maximum(w1, w2)
    valid = union > 0
    if not valid.any():
        return 1.0
    return float(np.sum(inter[valid]) / np.sum(union[valid]))


def weighted_iou_full(w1: np.ndarray, w2: np.ndarray) -> float:
    # official physical-variance form: sums over the whole frame (a different summation order)
    union_sum = np.sum(np.maximum(w1, w2))
    return 1.0 if union_sum == 0 else float(np.sum(np.minimum(w1, w2)) / union_sum)


def weighted_mask(mask: np.ndarray) -> np.ndarray:
    return mask.sum(axis=0, dtype=np.uint16) / len(mask)


def variance_metrics(take1: GridClip, take2: GridClip) -> dict:
    """Physical variance: take-1 against take-2."""
    return {
        "variance_spatial": iou(take1.mask.any(axis=0), take2.mask.any(axis=0)),
        "variance_weighted_spatial": weighted_iou_full(weighted_mask(take1.mask), weighted_mask(take2.mask)),
        "variance_spatiotemporal_iou": iou_frames(take1.mask, take2.mask),
        "variance_mse": mse_frames(take1.rgb, take2.rgb),
    }


def clip_metrics(take1: GridClip, take2: GridClip, gen: GridClip, names=("take-1", "take-2", "generated"),
                 variance: dict | None = None) -> dict:
    """The 12 official metrics of one view, keyed by column stem (without ``_{view}``)."""
    lengths = {n: (len(c.rgb), len(c.mask)) for n, c in zip(names, (take1, take2, gen))}
    if len({x for pair in lengths.values() for x in pair}) != 1:
        raise VideoError("videos have different frame counts within the evaluation window "
                         "(frames, mask frames): " + ", ".join(f"{n}={v}" for n, v in lengths.items()))
    any1, any2, anyg = (c.mask.any(axis=0) for c in (take1, take2, gen))
    w1, w2, wg = (weighted_mask(c.mask) for c in (take1, take2, gen))
    var = variance if variance is not None else variance_metrics(take1, take2)
    return {
        "v1_mse": mse_frames(take1.rgb, gen.rgb),
        "v2_mse": mse_frames(take2.rgb, gen.rgb),
        "variance_spatial": var["variance_spatial"],
        "variance_weighted_spatial": var["variance_weighted_spatial"],
        "variance_spatiotemporal_iou": var["variance_spatiotemporal_iou"],
        "variance_mse": var["variance_mse"],
        "spatiotemporal_iou_v1": iou_frames(take1.mask, gen.mask),
        "spatiotemporal_iou_v2": iou_frames(take2.mask, gen.mask),
        "spatial_iou_v1": iou(any1, anyg),
        "spatial_iou_v2": iou(any2, anyg),
        "weighted_spatial_iou_v1": weighted_iou_masked(w1, wg),
        "weighted_spatial_iou_v2": weighted_iou_masked(w2, wg),
    }
