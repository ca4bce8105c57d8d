"""Rewards (verifiers) that score a candidate video, found by ``reward.name``: one registry entry
per reward, declared in its folder's ``spec.py`` (see ``pipeline.registry``). A registered reward
is a class with ``from_config(cfg)`` (the scorer: ``score_video``, ``score_many``, ``settings``),
``check(cfg)`` (cheap checks of the checkpoint, no weights read) and
``settings_problems(cfg, frames)`` (values that do not fit together or a candidate's frames).
"""

from __future__ import annotations

from typing import Any

from pipeline.registry import Registry

from .base import RewardConfig

REWARDS = Registry("pipeline.rewards", "reward")


def build_scorer(cfg: RewardConfig) -> Any:
    """The scorer ``cfg`` names, its model loaded."""
    return REWARDS.of(cfg).from_config(cfg)


def reward_problems(cfg: RewardConfig, frames: int | None = None) -> list[str]:
    """What is wrong with ``cfg`` (for candidates of ``frames`` frames, when known)."""
    return REWARDS.of(cfg).settings_problems(cfg, frames)


def check_reward(cfg: RewardConfig) -> None:
    """Cheap checks that the reward's checkpoint is there and fits its settings; raises a
    PipelineError naming the key."""
    REWARDS.of(cfg).check(cfg)


__all__ = ["REWARDS", "RewardConfig", "build_scorer", "check_reward", "reward_problems"]
