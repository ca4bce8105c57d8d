"""Fields every reward config has; each reward subclasses it with its own knobs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from omegaconf import MISSING

from pipeline.fields import device_name, operational


@dataclass
class RewardConfig:
    # guidance follows the gradient of the surprise; a reward that ranks candidates has none
    differentiable: ClassVar[bool] = True
    name: str = MISSING  # the registry entry (pipeline/rewards/<folder>/spec.py)
    device: str = operational("auto", check=device_name)


class NonFiniteSurpriseError(FloatingPointError):
    """A reward came out NaN/inf: selecting by it would silently pick an arbitrary candidate."""


@dataclass(frozen=True)
class ScoreFailure:
    """A clip that could not be scored (``score_many(on_error="record")``)."""

    error: str
    settings: dict[str, Any]


class GrowingSurprise(Protocol):
    """The surprise of videos that grow chunk by chunk (``scorer.so_far(rows)``)."""

    def extend(self, frames: Any) -> Any: ...

    def select_rows(self, rows: Sequence[int]) -> None: ...


class InLoopScorer(Protocol):
    """What a strategy with the reward inside sampling needs from a scorer (V-JEPA 2's
    ``SurpriseScorer`` is one; another verifier, e.g. an image-embedding one, fits by offering the
    same): batched surprises of device tensors, the surprise of growing videos, a differentiable
    surprise of guided frames after clean context through the scorer's own preprocessing, and
    counters of the windows it ran forward and backward."""

    forwards: int
    backwards: int
    context_frames: int

    def surprises(self, frames: Any) -> Any: ...

    def so_far(self, rows: int) -> GrowingSurprise: ...

    def guidance_surprises(
        self, target: Any, context: Any = None, worst_window: bool = False, checkpoint_windows: bool = False
    ) -> Any: ...


def read_clip(path: Any) -> tuple[Any, float]:
    """A candidate's uint8 (T, H, W, 3) frames and fps for a scorer; any failure to decode is a
    VideoError (decord can raise a bare RuntimeError), so a scorer records it against that clip alone."""
    from pipeline.video_io import VideoError, read_video

    try:
        return read_video(path)
    except VideoError:
        raise
    except Exception as exc:  # noqa: BLE001 - decord's undecodable files
        raise VideoError(f"cannot decode video {path}: {exc}") from exc


def score_each(clips: Sequence[Any], score_frames: Any, settings: Any, on_error: str = "raise") -> list[Any]:
    """``score_frames`` of each clip (frames, or a video path read with ``read_clip``), in order.
    ``on_error="record"`` puts a ``ScoreFailure`` in place of a clip that cannot be read, is too
    short or scores non-finite; ``"raise"`` raises."""
    from pipeline.video_io import VideoError

    if on_error not in ("raise", "record"):
        raise ValueError(f"on_error must be 'raise' or 'record', got {on_error!r}")
    out: list[Any] = []
    for clip in clips:
        try:
            out.append(score_frames(read_clip(clip)[0] if isinstance(clip, (str, os.PathLike)) else clip))
        except (VideoError, OSError, ValueError, TypeError, FloatingPointError) as exc:
            if on_error == "raise":
                raise
            out.append(ScoreFailure(f"{type(exc).__name__}: {exc}", settings))
    return out
