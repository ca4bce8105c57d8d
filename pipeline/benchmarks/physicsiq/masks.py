"""Official Physics-IQ motion masks (google-deepmind/physics-IQ-benchmark: code/binary_mask_generator.py), bit-exact, with a content-keyed cache.

The mask of a video is a running-average background subtraction done with the same OpenCV calls
as the official ``binary_mask_generator`` (accumulateWeighted and convertScaleAbs round in ways
plain numpy does not). The masks are then written as grayscale mp4v and that file is what the
metrics read: the lossy round trip is part of the official score, so the cache stores the mp4v
file itself rather than the exact masks.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.files import atomic_path, file_digest
from pipeline.video_io import VideoError

CACHE_VERSION = 1  # bump when the mask computation or file format changes


@dataclass(frozen=True)
class MaskParams:
    blur: int = 5
    alpha: float = 0.3
    threshold: int = 10
    kernel: int = 5


OFFICIAL_MASKS = MaskParams()  # the official binary_mask_generator settings


def motion_masks(frames_bgr: Iterable[np.ndarray], params: MaskParams = OFFICIAL_MASKS) -> Iterator[np.ndarray]:
    """Yield one uint8 {0,255} mask per BGR frame; the first is always empty."""
    kernel = np.ones((params.kernel, params.kernel), np.uint8)
    background = None
    for frame in frames_bgr:
        gray = cv2.GaussianBlur(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (params.blur, params.blur), 0)
        if background is None:
            background = gray.astype(np.float64)
            yield np.zeros_like(gray)
            continue
        # background first, then difference: the current frame is part of its own background
        cv2.accumulateWeighted(gray, background, params.alpha)
        diff = cv2.absdiff(gray, cv2.convertScaleAbs(background))
        _, mask = cv2.threshold(diff, params.threshold, 255, cv2.THRESH_BINARY)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        yield cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)


_CAPTURE_PARAMS: list[int] = []  # open parameters of every capture in this process


def use_one_decoder_thread() -> None:
    """Pool initializer for processes that together already fill the cores: one FFmpeg decoding
    thread each, instead of every process starting one per core. Decoded frames do not depend on
    the thread count. (cv2.setNumThreads is not called: in a forked child it deadlocks.)"""
    _CAPTURE_PARAMS[:] = [cv2.CAP_PROP_N_THREADS, 1]


def open_capture(path: str | os.PathLike) -> cv2.VideoCapture:
    return cv2.VideoCapture(str(path), cv2.CAP_ANY, _CAPTURE_PARAMS)


def video_fps(path: str | os.PathLike) -> float:
    """The fps OpenCV reports (what the official evaluator groups and selects ground truth by)."""
    cap = open_capture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    if not fps:
        raise VideoError(f"OpenCV cannot read the fps of {path}")
    return fps


def iter_video_bgr(path: str | os.PathLike) -> Iterator[np.ndarray]:
    cap = open_capture(path)
    if not cap.isOpened():
        raise VideoError(f"OpenCV cannot open video {path}")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def write_mask_video(path: str | os.PathLike, masks: Iterable[np.ndarray], fps: float) -> Path:
    """Grayscale mp4v at round(fps), size cut to even, written atomically (like the official)."""
    path = Path(path)
    writer = None
    count = 0
    with atomic_path(path, suffix=".tmp.mp4") as tmp:
        try:
            for mask in masks:
                h, w = mask.shape[0] - mask.shape[0] % 2, mask.shape[1] - mask.shape[1] % 2
                if writer is None:
                    fourcc = cv2.VideoWriter.fourcc(*"mp4v")
                    writer = cv2.VideoWriter(str(tmp), fourcc, round(fps), (w, h), isColor=False)
                    if not writer.isOpened():
                        raise VideoError("OpenCV has no mp4v encoder; cannot write motion masks")
                writer.write(np.ascontiguousarray(mask[:h, :w]))
                count += 1
            if writer is None:
                raise VideoError(f"no frames to write into mask video {path}")
        finally:
            if writer is not None:
                writer.release()
    return path


def make_mask_video(src: str | os.PathLike, dst: str | os.PathLike, params: MaskParams = OFFICIAL_MASKS) -> Path:
    fps = video_fps(src)
    return write_mask_video(dst, motion_masks(iter_video_bgr(src), params), fps)


class MaskCache:
    """Mask videos stored under a key made of the source video's bytes and the mask parameters.

    Keying by content (not by folder or file name) means a replaced generation can never pick up
    a stale mask, and identical files share one entry across runs and folders.
    """

    def __init__(self, cache_dir: str | os.PathLike, params: MaskParams = OFFICIAL_MASKS):
        self.cache_dir = Path(cache_dir)
        self.params = params

    def key(self, src: str | os.PathLike) -> str:
        meta = json.dumps(
            {"v": CACHE_VERSION, "params": asdict(self.params), "opencv": cv2.__version__}, sort_keys=True
        )
        return hashlib.sha256(f"{file_digest(Path(src))}|{meta}".encode()).hexdigest()

    def path_for(self, src: str | os.PathLike) -> Path:
        k = self.key(src)
        return self.cache_dir / k[:2] / f"{k}.mp4"

    def get(self, src: str | os.PathLike) -> Path:
        """Path of the mask video for ``src``, computing it on a miss."""
        dst = self.path_for(src)
        if not dst.is_file():
            make_mask_video(src, dst, self.params)
        return dst
