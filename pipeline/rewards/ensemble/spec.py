"""Several verifiers fused by rank: its ``reward.*`` schema and registry entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.fields import setting
from pipeline.registry import Spec

from ..base import RewardConfig


def _members_check(v: Any) -> str | None:
    return None if isinstance(v, list) and len(v) >= 2 else "must list at least two verifiers"


@dataclass
class EnsembleConfig(RewardConfig):
    differentiable: ClassVar[bool] = False  # a rank has no gradient
    name: str = "ensemble"
    # Each member is a reward section of its own: {name: vjepa2_surprise, variant: vitg, ...}.
    members: list[Any] = setting(factory=list, check=_members_check)


SPEC = Spec("ensemble", EnsembleConfig, "pipeline.rewards.ensemble.reward:Ensemble")
