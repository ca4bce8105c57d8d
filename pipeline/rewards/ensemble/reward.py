"""``reward=ensemble``, the registered entry: member scorers built from their own configs (the
scorer is ``scorer.py``); its checks import no torch (they run before any work)."""

from __future__ import annotations

from pipeline.errors import ConfigError

from .spec import EnsembleConfig, member_configs


class Ensemble:
    """The registered ensemble: member scorers built from their own configs."""

    @staticmethod
    def from_config(r: EnsembleConfig):
        from pipeline.rewards import build_scorer

        from .scorer import EnsembleScorer

        members = member_configs(r)
        for m in members:
            if r.device != "auto" and m.device == "auto":
                m.device = r.device  # the ensemble's device is the members' default
        return EnsembleScorer([m.name for m in members], [build_scorer(m) for m in members])

    @staticmethod
    def check(r: EnsembleConfig) -> None:
        from pipeline.rewards import check_reward

        for m in member_configs(r):
            check_reward(m)

    @staticmethod
    def settings_problems(r: EnsembleConfig, frames: int | None) -> list[str]:
        from pipeline.rewards import reward_problems

        try:
            members = member_configs(r)
        except ConfigError as exc:
            return [str(exc)]
        out = []
        for i, m in enumerate(members):
            out += [p.replace("reward.", f"reward.members[{i}].", 1) for p in reward_problems(m, frames)]
        return out
