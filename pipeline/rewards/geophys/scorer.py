"""The GeoPhys-style scorer: the five trajectory statistics (``trajectory.py``) of per-frame
embeddings from a frozen image encoder (``encoder.py``), fused across the candidates of an item by
rank (``pipeline/rewards/fusion.py``). A candidate's surprise is therefore relative: the score
stage scores every candidate, then calls ``fuse`` on their records; in-loop strategies get fused
values of the rows they hold. The fusion has no gradient, so guidance refuses this reward.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pipeline.errors import ConfigError
from pipeline.rewards.base import NonFiniteSurpriseError, read_clip, score_each
from pipeline.rewards.fusion import rank_fuse

from .spec import MIN_FRAMES
from .trajectory import STATISTICS, trajectory_statistics


@dataclass(frozen=True)
class TrajectoryResult:
    statistics: dict[str, float]
    num_frames_used: int
    settings: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """What the score stage keeps; ``surprise`` is set by ``fuse`` over the item's candidates."""
        return {"surprise": None, "statistics": self.statistics, "frames_used": self.num_frames_used}


class TrajectoryScorer:
    """Scores clips by the trajectory statistics of their frame embeddings (see module doc)."""

    relative = True  # surprises only mean something among the candidates fused together
    context_frames = 0  # no clean context: guidance is refused for this reward

    def __init__(self, encoder, max_frames: int | None = None, batch_frames: int = 64):
        if max_frames is not None and max_frames < MIN_FRAMES:
            raise ValueError(f"max_frames {max_frames}: the statistics need at least {MIN_FRAMES} frames")
        self.encoder, self.max_frames, self.batch_frames = encoder, max_frames, batch_frames
        self.forwards = 0  # frames through the encoder (reward forwards; pipeline/compute.py reads it)
        self.backwards = 0

    @property
    def settings(self) -> dict[str, Any]:
        e = self.encoder
        return {
            "verifier": "geophys",
            "encoder": e.path,
            "encoder_type": getattr(e.model.config, "model_type", None),
            "layer": e.layer,
            "pooling": e.pooling,
            "image_size": e.image_size,
            "max_frames": self.max_frames,
            "dtype": str(e.dtype).removeprefix("torch."),
            "statistics": list(STATISTICS),
            "fusion": "mean over statistics of the scaled rank among the item's candidates (lower = better)",
            "preprocess": "square bilinear antialias resize, /255, imagenet mean/std",
        }

    # ---- embeddings and statistics ------------------------------------------------------------

    def embeddings(self, frames: Any) -> torch.Tensor:
        """(T, D) embeddings of uint8 (T, H, W, 3) frames (or 0..255 floats), subsampled."""
        from pipeline.rewards.vjepa2.preprocess import as_frame_tensor
        from pipeline.rewards.vjepa2.windows import subsample_indices

        frames = as_frame_tensor(frames)
        if frames.shape[0] < MIN_FRAMES:
            raise ValueError(f"{frames.shape[0]} frame(s): the trajectory statistics need at least {MIN_FRAMES}")
        idx = subsample_indices(len(frames), self.max_frames)
        frames = frames[torch.as_tensor(idx)]
        out = []
        for i in range(0, len(frames), self.batch_frames):
            chunk = frames[i : i + self.batch_frames].to(self.encoder.device)
            out.append(self.encoder.embed(self.encoder.prepare(chunk)))
            self.forwards += len(chunk)
        return torch.cat(out)

    @staticmethod
    def statistics_of(z: torch.Tensor) -> dict[str, float]:
        stats = {k: float(v) for k, v in trajectory_statistics(z).items()}
        bad = [k for k, v in stats.items() if not math.isfinite(v)]
        if bad:
            raise NonFiniteSurpriseError(
                f"non-finite trajectory statistics {bad}; check the input frames for NaN/inf and the encoder dtype"
            )
        return stats

    def score_frames(self, frames: Any) -> TrajectoryResult:
        z = self.embeddings(frames)
        return TrajectoryResult(self.statistics_of(z), len(z), self.settings)

    def score_video(self, path: str | os.PathLike) -> TrajectoryResult:
        return self.score_frames(read_clip(path)[0])

    def score_many(self, clips: Sequence[Any], on_error: str = "raise") -> list[Any]:
        """Results in order (``rewards.base.score_each``: failures recorded per clip on request)."""
        return score_each(clips, self.score_frames, self.settings, on_error)

    # ---- fusion -------------------------------------------------------------------------------

    @staticmethod
    def fuse(records: Sequence[dict[str, Any]]) -> list[float]:
        """The fused surprise of each record (``TrajectoryResult.record``) among ``records``."""
        return rank_fuse([[r["statistics"][s] for r in records] for s in STATISTICS])

    def fused(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        """Fused surprises of rows given by their embeddings; NaN for all while any row is too
        short for the statistics (a search then has nothing to decide on yet)."""
        if any(len(z) < MIN_FRAMES for z in embeddings):
            return torch.full((len(embeddings),), float("nan"), dtype=torch.float64)
        columns: dict[str, list[float]] = {s: [] for s in STATISTICS}
        for z in embeddings:
            for s, v in trajectory_statistics(z).items():
                columns[s].append(float(v))
        return torch.tensor(rank_fuse(list(columns.values())), dtype=torch.float64)

    # ---- in-loop entries ----------------------------------------------------------------------

    def surprises(self, frames: torch.Tensor) -> torch.Tensor:
        """Fused surprises (B,) of a batch of videos (B, T, H, W, 3), the candidates of one item."""
        return self.fused([self.embeddings(v) for v in frames])

    def so_far(self, rows: int) -> TrajectorySoFar:
        return TrajectorySoFar(self, rows)

    def guidance_surprises(self, *args: Any, **kwargs: Any) -> Any:
        raise ConfigError("reward.name=geophys ranks candidates, which has no gradient: guidance cannot use it")


class TrajectorySoFar:
    """Fused surprises of rows that grow chunk by chunk: each new frame is embedded once, the
    statistics are recomputed on the embeddings so far (cheap next to the encoder)."""

    def __init__(self, scorer: TrajectoryScorer, rows: int):
        if scorer.max_frames is not None:
            raise ValueError(
                "scoring a video as it grows needs reward.max_frames=null: a uniform subsample of "
                "the final video is not known before its last frame"
            )
        self.scorer = scorer
        self.z: list[torch.Tensor] = [torch.zeros(0, 0) for _ in range(rows)]

    def extend(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.shape[0] != len(self.z):
            raise ValueError(f"{frames.shape[0]} videos given, {len(self.z)} in flight")
        enc = self.scorer.encoder
        for b, video in enumerate(frames):
            if video.shape[0] == 0:
                continue
            new = enc.embed(enc.prepare(video.to(enc.device)))
            self.scorer.forwards += int(video.shape[0])
            self.z[b] = new if self.z[b].numel() == 0 else torch.cat([self.z[b], new])
        return self.scorer.fused(self.z)

    def select_rows(self, rows: Sequence[int]) -> None:
        self.z = [self.z[int(r)] for r in rows]
