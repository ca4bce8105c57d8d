"""Per (scenario, view) Physics-IQ metrics, vectorised and cached (the official ones: repository
google-deepmind/physics-IQ-benchmark, code/calculate_and_write_metrics_to_csv.py).

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

from pipeline.files import atomic_path, atomic_write_bytes, file_digest
from pipeline.video_io import VideoError

from .masks import (
    CACHE_VERSION,
    OFFICIAL_MASKS,
    MaskCache,
    MaskParams,
    iter_video_bgr,
    motion_masks,
    open_capture,
    write_mask_video,
)

CHUNK = 16  # frames per vectorised step: bounds the float temporaries
GRID_LAYOUT = 2  # bump when the cached grid-clip files change form (2: packed bits + counts)


def first_frame_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of the first decoded frame."""
    cap = open_capture(path)
    ok, frame = cap.read() if cap.isOpened() else (False, None)
    cap.release()
    if not ok or frame is None:
        raise VideoError(f"cannot decode the first frame of {path}")
    return frame.shape[1], frame.shape[0]


def window(fps: float) -> int:
    """Frames with index < 5·fps are compared (fps may be fractional)."""
    return int(np.ceil(5 * fps))


# --- grid clips -------------------------------------------------------------------------------
def pack_frames(mask: np.ndarray) -> np.ndarray:
    """(T, ...) bool -> (T, nbytes) uint8: each frame's flattened mask, bit-packed."""
    return np.packbits(mask.reshape(len(mask), -1), axis=1)


@dataclass
class GridClip:
    """A video on the evaluation grid: what the metrics read.

    The masks (resized mask > 127, all three decoded channels, as the official code keeps them)
    are held in the two forms the metrics need: bit-packed per frame, for the IoUs (popcounts of
    and/or), and per-pixel counts of moving frames, for the weighted spatial IoU."""

    rgb: np.ndarray  # (T, h, w, 3) uint8, BGR as decoded (channel order does not matter)
    bits: np.ndarray  # (T, ceil(h*w*3 / 8)) uint8: packbits of each frame's flattened mask
    counts: np.ndarray  # (h, w, 3) uint16: frames in which each pixel moves
    mask_frames: int  # frames of mask in the window (checked against len(rgb) by the metrics)
    key: str = ""  # GroundTruthCache key (real clips only)

    @classmethod
    def from_masks(cls, rgb: np.ndarray, mask: np.ndarray) -> GridClip:
        """``mask``: (T, h, w, 3) bool."""
        return cls(rgb, pack_frames(mask), mask.sum(axis=0, dtype=np.uint16), len(mask))

    def __len__(self) -> int:
        return len(self.rgb)

    def weighted(self) -> np.ndarray:
        """Per-pixel share of moving frames, the official ``sum(masks) / T`` in float64."""
        return self.counts / self.mask_frames

    def any_bits(self) -> np.ndarray:
        """(1, nbytes): pixels that move in any frame."""
        return np.bitwise_or.reduce(self.bits, axis=0, keepdims=True)


class _GridFrames:
    """The first ``limit`` frames resized to ``grid``, written into one preallocated array (no
    per-frame arrays to stack afterwards); ``binarize`` keeps resized > 127 instead."""

    def __init__(self, grid: tuple[int, int], limit: int, binarize: bool = False):
        self.grid, self.limit, self.binarize = grid, limit, binarize
        self.out: np.ndarray | None = None
        self.n = 0

    def add(self, frame: np.ndarray) -> None:
        if self.n >= self.limit:
            return
        small = cv2.resize(frame, self.grid)
        if self.out is None:
            self.out = np.empty((self.limit, *small.shape), bool if self.binarize else np.uint8)
        if self.binarize:
            np.greater(small, 127, out=self.out[self.n])
        else:
            self.out[self.n] = small
        self.n += 1

    def result(self, path) -> np.ndarray:
        if not self.n or self.out is None:
            raise VideoError(f"no frames decoded from {path}")
        return self.out[: self.n]


def _grid_masks(mask_video: str | os.PathLike, grid: tuple[int, int], limit: int) -> np.ndarray:
    masks = _GridFrames(grid, limit, binarize=True)
    for i, frame in enumerate(iter_video_bgr(mask_video)):
        if i >= limit:
            break
        masks.add(frame)
    return masks.result(mask_video)


def build_grid_clip(
    video: str | os.PathLike,
    grid: tuple[int, int],
    limit: int,
    mask_video: str | os.PathLike | None = None,
    mask_cache: MaskCache | None = None,
    params: MaskParams = OFFICIAL_MASKS,
) -> GridClip:
    """Decode ``video`` once: resized frames of the window, and its motion masks.

    Masks come from ``mask_video`` when given (shipped real masks), else from ``mask_cache`` when
    it holds them, else they are computed from the same decoded frames, written to mp4v (into
    ``mask_cache`` if given, else a temporary file) and read back."""
    cached = mask_cache.path_for(video) if mask_cache is not None and mask_video is None else None
    need_masks = mask_video is None and not (cached is not None and cached.is_file())
    cap = open_capture(video)
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    if not fps:
        cap.release()
        raise VideoError(f"OpenCV cannot open {video} or read its fps")
    rgb = _GridFrames(grid, limit)

    def frames():
        try:
            i = 0
            while need_masks or i < limit:
                ok, frame = cap.read()
                if not ok:
                    return
                rgb.add(frame)
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
                return GridClip.from_masks(rgb.result(video), _grid_masks(tmp, grid, limit))
            finally:
                os.unlink(tmp)
    else:
        for _ in frames():
            pass
        mask_video = mask_video if mask_video is not None else cached
        assert mask_video is not None  # no masks to make means a given or cached mask video
    return GridClip.from_masks(rgb.result(video), _grid_masks(mask_video, grid, limit))


class GroundTruthCache:
    """Grid clips of real testing clips, keyed by content (clip bytes, shipped mask bytes), grid,
    window and mask parameters; stored as .npy (frames memory-mapped when read; masks as packed
    bits and per-pixel counts).

    Disk: T·(W/4)·(H/4)·3 bytes of frames per clip (e.g. 1080p clips at 16 fps: 31 MB per clip).
    File digests are memoised by (path, size, mtime) so a warm run does not rehash the dataset.
    """

    def __init__(self, cache_dir: str | os.PathLike, params: MaskParams = OFFICIAL_MASKS):
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
        entry = {"path": str(path), "stamp": stamp, "sha256": file_digest(path), "size": list(first_frame_size(path))}
        atomic_write_bytes(memo, json.dumps(entry).encode())
        return entry

    def digest(self, path: str | os.PathLike) -> str:
        return self.info(path)["sha256"]

    def frame_size(self, path: str | os.PathLike) -> tuple[int, int]:
        """(width, height) of the first decoded frame."""
        return tuple(self.info(path)["size"])

    def key(self, clip, grid: tuple[int, int], limit: int, mask_video=None) -> str:
        meta = json.dumps(
            {
                "v": CACHE_VERSION,
                "kind": "grid",
                "layout": GRID_LAYOUT,
                "params": asdict(self.params),
                "opencv": cv2.__version__,
                "grid": list(grid),
                "limit": limit,
                "clip": self.digest(clip),
                "mask": self.digest(mask_video) if mask_video is not None else None,
            },
            sort_keys=True,
        )
        return hashlib.sha256(meta.encode()).hexdigest()

    def get(self, clip, grid: tuple[int, int], limit: int, mask_video=None) -> GridClip:
        k = self.key(clip, grid, limit, mask_video)
        base = self.cache_dir / "grid" / k[:2] / k
        paths = {part: base.with_suffix(f".{part}.npy") for part in ("bits", "counts", "rgb")}
        if all(p.is_file() for p in paths.values()):
            try:
                rgb = np.load(paths["rgb"], mmap_mode="r")
                bits, counts = np.load(paths["bits"]), np.load(paths["counts"])
                return GridClip(rgb, bits, counts, len(bits), k)
            except (OSError, ValueError):
                pass  # a damaged entry is rebuilt
        got = build_grid_clip(clip, grid, limit, mask_video=mask_video, params=self.params)
        if got.mask_frames != len(got):
            raise VideoError(f"{clip}: {got.mask_frames} mask frames but {len(got)} frames in the window")
        _atomic_npy(paths["bits"], got.bits)
        _atomic_npy(paths["counts"], got.counts)
        _atomic_npy(paths["rgb"], got.rgb)  # written last: the entry is complete when it exists
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
        atomic_write_bytes(path, json.dumps(got).encode())  # floats round-trip exactly through JSON
        return got


def _atomic_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".tmp.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array))


# --- metrics on grid clips --------------------------------------------------------------------
def iou_bits(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Per-row IoU of bit-packed masks (rows, nbytes); 1.0 where both are empty. The counts are
    the exact pixel counts of the unpacked masks, so the ratios are the official ones."""
    inter = np.bitwise_count(a & b).sum(axis=1, dtype=np.int64)
    union = np.bitwise_count(a | b).sum(axis=1, dtype=np.int64)
    return [1.0 if u == 0 else i / u for i, u in zip(inter.tolist(), union.tolist())]


def iou_frames(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Per-frame IoU of (T, ...) boolean masks; 1.0 where both are empty."""
    return iou_bits(pack_frames(a), pack_frames(b))


# float32(v/255) for every uint8 v, computed as the official code does (float64 division, cast to
# float32): a lookup gives the same bits as the arithmetic, and the float32 difference and square
# that follow are the official element operations.
_UNIT = (np.arange(256) / 255.0).astype(np.float32)
_UNIT_LUT = _UNIT.reshape(1, 256)


def _unit(frames: np.ndarray) -> np.ndarray:
    """(n, h, w, 3) uint8 -> (n, h*w*3) float32 on [0, 1]."""
    frames = np.ascontiguousarray(frames)
    return cv2.LUT(frames.reshape(len(frames), -1), _UNIT_LUT)


def mse_against(ref: np.ndarray, others: list[np.ndarray]) -> list[list[float]]:
    """Per-frame MSE of each clip in ``others`` against ``ref`` ((T, h, w, 3) uint8 clips), on
    [0, 1] with float32 differences; ``ref`` is converted once. Each frame's mean is numpy's
    float32 pairwise sum over the contiguous frame, as the official per-frame ``np.mean`` (tests
    check the equality)."""
    out: list[list[float]] = [[] for _ in others]
    for s in range(0, len(ref), CHUNK):
        r = _unit(ref[s : s + CHUNK])
        for values, other in zip(out, others):
            diff = _unit(other[s : s + CHUNK])
            diff -= r
            diff *= diff  # (o - r)^2 == (r - o)^2 bit for bit
            values += diff.mean(axis=1).tolist()
    return out


def mse_frames(a: np.ndarray, b: np.ndarray) -> list[float]:
    return mse_against(b, [a])[0]


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


def variance_metrics(take1: GridClip, take2: GridClip) -> dict:
    """Physical variance: take-1 against take-2."""
    return {
        "variance_spatial": iou_bits(take1.any_bits(), take2.any_bits())[0],
        "variance_weighted_spatial": weighted_iou_full(take1.weighted(), take2.weighted()),
        "variance_spatiotemporal_iou": iou_bits(take1.bits, take2.bits),
        "variance_mse": mse_frames(take1.rgb, take2.rgb),
    }


def clip_metrics(
    take1: GridClip,
    take2: GridClip,
    gen: GridClip,
    names=("take-1", "take-2", "generated"),
    variance: dict | None = None,
) -> dict:
    """The 12 official metrics of one view, keyed by column stem (without ``_{view}``)."""
    lengths = {n: (len(c), c.mask_frames) for n, c in zip(names, (take1, take2, gen))}
    if len({x for pair in lengths.values() for x in pair}) != 1:
        raise VideoError(
            "videos have different frame counts within the evaluation window "
            "(frames, mask frames): " + ", ".join(f"{n}={v}" for n, v in lengths.items())
        )
    any1, any2, anyg = (c.any_bits() for c in (take1, take2, gen))
    w1, w2, wg = (c.weighted() for c in (take1, take2, gen))
    var = variance if variance is not None else variance_metrics(take1, take2)
    v1_mse, v2_mse = mse_against(gen.rgb, [take1.rgb, take2.rgb])
    return {
        "v1_mse": v1_mse,
        "v2_mse": v2_mse,
        "variance_spatial": var["variance_spatial"],
        "variance_weighted_spatial": var["variance_weighted_spatial"],
        "variance_spatiotemporal_iou": var["variance_spatiotemporal_iou"],
        "variance_mse": var["variance_mse"],
        "spatiotemporal_iou_v1": iou_bits(take1.bits, gen.bits),
        "spatiotemporal_iou_v2": iou_bits(take2.bits, gen.bits),
        "spatial_iou_v1": iou_bits(any1, anyg)[0],
        "spatial_iou_v2": iou_bits(any2, anyg)[0],
        "weighted_spatial_iou_v1": weighted_iou_masked(w1, wg),
        "weighted_spatial_iou_v2": weighted_iou_masked(w2, wg),
    }
