"""The ensemble scorer: verifiers combined by rank (the rule of ``pipeline/rewards/fusion.py``):
each member scores every candidate of an item (a relative member, e.g. GeoPhys, first fuses its own
statistics), each member's surprises become scaled ranks among the candidates, and a candidate's
surprise is their mean. Members are reward sections of their own, checked by their own schemas;
the video is decoded once for all of them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pipeline.errors import ConfigError
from pipeline.rewards.base import read_clip, score_each
from pipeline.rewards.fusion import rank_fuse


@dataclass(frozen=True)
class EnsembleResult:
    records: list[dict[str, Any]]  # one per member, in member order
    settings: dict[str, Any]

    def record(self) -> dict[str, Any]:
        return {"surprise": None, "members": self.records}


class EnsembleScorer:
    relative = True
    context_frames = 0
    backwards = 0

    def __init__(self, names: Sequence[str], scorers: Sequence[Any]):
        self.names, self.scorers = list(names), list(scorers)

    @property
    def forwards(self) -> int:
        return sum(s.forwards for s in self.scorers)

    @property
    def settings(self) -> dict[str, Any]:
        return {
            "verifier": "ensemble",
            "fusion": "mean over members of the scaled rank among the item's candidates (lower = better)",
            "members": [{"name": n, **s.settings} for n, s in zip(self.names, self.scorers)],
        }

    def score_frames(self, frames: Any) -> EnsembleResult:
        return EnsembleResult([s.score_frames(frames).record() for s in self.scorers], self.settings)

    def score_video(self, path: str | os.PathLike) -> EnsembleResult:
        return self.score_frames(read_clip(path)[0])

    def score_many(self, clips: Sequence[Any], on_error: str = "raise") -> list[Any]:
        return score_each(clips, self.score_frames, self.settings, on_error)

    def fuse(self, records: Sequence[dict[str, Any]]) -> list[float]:
        columns = []
        for i, scorer in enumerate(self.scorers):
            mine = [r["members"][i] for r in records]
            columns.append(scorer.fuse(mine) if getattr(scorer, "relative", False) else [m["surprise"] for m in mine])
        return rank_fuse(columns)

    def surprises(self, frames: torch.Tensor) -> torch.Tensor:
        columns = [s.surprises(frames).double().cpu().tolist() for s in self.scorers]
        return torch.tensor(rank_fuse(columns), dtype=torch.float64)

    def so_far(self, rows: int) -> EnsembleSoFar:
        return EnsembleSoFar([s.so_far(rows) for s in self.scorers])

    def guidance_surprises(self, *args: Any, **kwargs: Any) -> Any:
        raise ConfigError("reward.name=ensemble fuses ranks, which have no gradient: guidance cannot use it")


class EnsembleSoFar:
    """Every member's surprise of the growing videos, fused by rank at each boundary; NaN for all
    rows while no member can tell them apart yet."""

    def __init__(self, members: Sequence[Any]):
        self.members = list(members)

    def extend(self, frames: torch.Tensor) -> torch.Tensor:
        columns = [m.extend(frames).double().cpu() for m in self.members]
        known = [c.tolist() for c in columns if torch.isfinite(c).any()]
        if not known:
            return torch.full((frames.shape[0],), float("nan"), dtype=torch.float64)
        return torch.tensor(rank_fuse(known), dtype=torch.float64)

    def select_rows(self, rows: Sequence[int]) -> None:
        for m in self.members:
            m.select_rows(rows)
