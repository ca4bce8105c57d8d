"""Fields every reward config has; each reward subclasses it with its own knobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from pipeline.fields import device_name, operational


@dataclass
class RewardConfig:
    name: str = MISSING  # the registry entry (pipeline/rewards/<folder>/spec.py)
    device: str = operational("auto", check=device_name)


class NonFiniteSurpriseError(FloatingPointError):
    """A reward came out NaN/inf: selecting by it would silently pick an arbitrary candidate."""


@dataclass(frozen=True)
class ScoreFailure:
    """A clip that could not be scored (``score_many(on_error="record")``)."""

    error: str
    settings: dict[str, Any]
