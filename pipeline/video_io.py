"""Video files in and out.

decord reads (exact frame indices, no ffmpeg fps filter), imageio-ffmpeg writes (a bundled ffmpeg
binary, so no system install), PyAV probes the container (its duration is what ffprobe reports as
``format=duration``, the number the Physics-IQ contract checks). Every write goes to a temporary
file in the destination folder and is renamed into place, so a crash never leaves a truncated
video under the final name.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError
from pipeline.files import atomic_path


class VideoError(PipelineError):
    """A video that is missing, does not decode, or does not have the expected shape."""


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    duration: float  # container duration in seconds
    width: int
    height: int


def probe_video(path: str | os.PathLike) -> VideoInfo:
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = stream.frames
            if not frames:  # some muxers leave the count empty: count packets instead
                frames = sum(1 for p in container.demux(stream) if p.size)
            duration = container.duration / 1e6 if container.duration is not None else float("nan")
            return VideoInfo(
                num_frames=int(frames),
                fps=float(stream.average_rate) if stream.average_rate else float("nan"),
                duration=float(duration),
                width=int(stream.codec_context.width),
                height=int(stream.codec_context.height),
            )
    except (av.error.FFmpegError, IndexError, ValueError) as exc:
        raise VideoError(f"cannot read video {path}: {exc}") from exc


def read_video(path: str | os.PathLike, indices: np.ndarray | list[int] | None = None) -> tuple[np.ndarray, float]:
    """Decode ``path`` to uint8 frames (T, H, W, 3) in RGB; ``indices`` picks frames exactly."""
    import cv2  # noqa: F401  before decord: decord's bundled zlib, loaded first, breaks cv2's PNG decoding
    import decord

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video not found: {path}")
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        n = len(reader)
        if indices is None:
            indices = np.arange(n)
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= n):
            raise VideoError(f"{path}: frame index out of range for {n} frames")
        frames = reader.get_batch(list(indices)).asnumpy()
        fps = float(reader.get_avg_fps())
    except decord.DECORDError as exc:
        raise VideoError(f"cannot decode video {path}: {exc}") from exc
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise VideoError(f"{path}: unexpected decoded shape {frames.shape}")
    return frames, fps


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, quality: int = 8) -> Path:
    """Write uint8 RGB frames (T, H, W, 3) as H.264 mp4, atomically.

    Sizes that are not multiples of 2 are rejected rather than silently padded: padding would
    change the frame size the benchmark compares.
    """
    import imageio.v2 as iio

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise VideoError(f"write_video needs uint8 (T,H,W,3) frames, got {frames.dtype} {frames.shape}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise VideoError(f"H.264 needs even frame sizes, got {frames.shape[2]}x{frames.shape[1]}")
    path = Path(path)
    with atomic_path(path, suffix=".tmp.mp4") as tmp:
        try:
            writer = iio.get_writer(
                tmp,
                format="FFMPEG",
                fps=fps,
                codec="libx264",
                quality=quality,
                macro_block_size=2,
                pixelformat="yuv420p",
                ffmpeg_log_level="error",
            )
            try:
                for frame in frames:
                    writer.append_data(frame)
            finally:
                writer.close()
            # ffmpeg can fail to write the trailer (a full disk) and still exit quietly: only a
            # file that probes with every frame takes the final name.
            written = probe_video(tmp).num_frames
            if written != len(frames):
                raise VideoError(f"{path}: ffmpeg wrote {written} of {len(frames)} frames")
        except Exception as exc:
            refused = _write_refused(path.parent)  # asked while the partial file still fills the disk
            if refused is not None:  # ffmpeg says only "broken pipe": the file system is the cause
                raise OSError(refused, os.strerror(refused), str(path)) from exc
            raise
    return path


def _write_refused(folder: Path) -> int | None:
    """The errno with which ``folder``'s file system refuses a 1 MiB write (full, over quota,
    read-only), or None when it takes it."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".space-probe.", dir=folder)
    except OSError as exc:
        return exc.errno
    try:
        os.write(fd, bytes(1 << 20))
        os.fsync(fd)
        return None
    except OSError as exc:
        return exc.errno
    finally:
        os.close(fd)
        os.unlink(probe)


def check_video(path: str | os.PathLike, num_frames: int | None = None, fps: float | None = None) -> VideoInfo:
    """Probe ``path`` and raise VideoError unless it decodes with the expected frame count and fps."""
    info = probe_video(path)
    if num_frames is not None and info.num_frames != num_frames:
        raise VideoError(f"{path}: {info.num_frames} frames, expected {num_frames}")
    if fps is not None and abs(info.fps - fps) > 1e-6:
        raise VideoError(f"{path}: {info.fps} fps, expected {fps}")
    # The last frame must decode too: a truncated file can keep a valid header.
    read_video(path, indices=[info.num_frames - 1])
    return info
