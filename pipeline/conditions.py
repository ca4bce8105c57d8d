"""The prepared condition files: a PNG for an image (i2v), an mp4 for a clip (v2v). The prepare
stage writes them and the sample stage reads them back as uint8 RGB arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def encode_png(rgb) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", rgb[..., ::-1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def decode_png(path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return bgr[..., ::-1].copy()


def load_condition(path, generator=None):
    """The prepared condition: uint8 RGB (H, W, 3) from a PNG, or (T, H, W, 3) from a v2v clip.

    With ``generator``, a clip for an engine without ``accepts_clips`` is refused by name."""
    from pathlib import Path

    if Path(path).suffix.lower() != ".mp4":
        return decode_png(path)
    if generator is not None and not getattr(generator, "accepts_clips", False):
        from pipeline.errors import StageError

        raise StageError(
            f"{path} is a v2v conditioning clip but the {getattr(generator, 'kind', '?')} "
            "generator takes a single image; run with benchmark.mode=i2v"
        )
    from pipeline.video_io import read_video

    return read_video(path)[0]
