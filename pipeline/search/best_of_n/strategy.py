"""Best-of-N: N independent candidates, the reward picks one afterwards (select)."""

from __future__ import annotations

from ..base import Strategy
from .spec import BestOfNConfig


class BestOfN(Strategy):
    @staticmethod
    def num_candidates(cfg: BestOfNConfig) -> int:
        return cfg.n

    @staticmethod
    def seeds(cfg: BestOfNConfig) -> list[int]:
        """Candidate k uses seed base_seed + k, so growing N keeps the candidates already made."""
        return [cfg.base_seed + k for k in range(cfg.n)]
