"""Several verifiers fused by rank: its ``reward.*`` schema and registry entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from omegaconf import OmegaConf

from pipeline.errors import ConfigError
from pipeline.fields import setting
from pipeline.registry import Spec

from ..base import RewardConfig


def _members_check(v: Any) -> str | None:
    return None if isinstance(v, list) and len(v) >= 2 else "must list at least two verifiers"


def _typed_members(members: Any) -> Any:
    """The members as their schemas type them, for the run key (a member's device or batch size
    then leaves it unchanged, as it does for a reward on its own); as given when they do not type
    (the config check names what is wrong)."""
    try:
        return member_configs(EnsembleConfig(members=list(members)))
    except Exception:  # noqa: BLE001 - reported by the reward's settings_problems before any work
        return members


@dataclass
class EnsembleConfig(RewardConfig):
    differentiable: ClassVar[bool] = False  # a rank has no gradient
    name: str = "ensemble"
    # Each member is a reward section of its own: {name: vjepa2_surprise, variant: vitg, ...}.
    members: list[Any] = setting(factory=list, check=_members_check, key_view=_typed_members)


def member_configs(cfg: EnsembleConfig) -> list[RewardConfig]:
    """The members as typed reward configs; ConfigError naming ``reward.members[i]`` otherwise."""
    from pipeline.fields import problems
    from pipeline.rewards import REWARDS

    out: list[Any] = []
    for i, member in enumerate(cfg.members):
        key = f"reward.members[{i}]"
        if not isinstance(member, dict) or "name" not in member:
            raise ConfigError(f"{key}: a member is a reward section with a name, e.g. {{name: geophys, ...}}")
        if member["name"] == "ensemble":
            raise ConfigError(f"{key}: an ensemble member cannot be an ensemble (list its members instead)")
        schema = REWARDS.spec(member["name"]).config
        try:
            typed = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), member))
        except Exception as exc:  # noqa: BLE001 - omegaconf's validation errors, named by key
            raise ConfigError(f"{key}: {str(exc).splitlines()[0]}") from None
        bad = problems(typed, key + ".")
        if bad:
            raise ConfigError("; ".join(bad))
        out.append(typed)
    return out


SPEC = Spec("ensemble", EnsembleConfig, "pipeline.rewards.ensemble.reward:Ensemble")
