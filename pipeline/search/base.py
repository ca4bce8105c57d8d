"""What every search strategy is: its config's fields, and the interface the sample stage drives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from omegaconf import MISSING

from pipeline.fields import at_least, operational


@dataclass
class SearchConfig:
    name: str = MISSING  # the registry entry (pipeline/search/<folder>/spec.py)
    # NFEs one item may spend (all its candidates); settings that need more stop before any work
    budget_nfe: int | None = operational(None, check=at_least(1))


def json_number(v: float) -> float | None:
    """A surprise as a record holds it: a float, or null when it is not finite."""
    return float(v) if np.isfinite(v) else None


@dataclass
class Found:
    """An in-loop strategy's result for one item: the final candidates (uint8 (T, H, W, 3) videos),
    the seed each one's lineage started from, their surprises as the loop measured them (on the
    decoded frames, before the mp4 is written) and a trace of every decision."""

    videos: list[np.ndarray]
    seeds: list[int]
    surprises: list[float | None]  # None: not finite
    trace: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds of the strategy's own phases


class Strategy:
    """A registered strategy. ``in_loop = False``: the candidates are independent generations from
    ``seeds(cfg)`` (the sample stage makes and reuses them one by one; score and select pick one).
    ``in_loop = True``: ``run(cfg, generator, request, scorer)`` drives a generation session with the
    reward inside it and returns the final candidates (:class:`Found`); score and select then pick
    among those exactly as among best-of-N candidates."""

    in_loop: ClassVar[bool] = False

    @staticmethod
    def num_candidates(cfg: Any) -> int:
        raise NotImplementedError

    @staticmethod
    def problems(cfg: Any, generator_class: type, reward_cfg: Any, generator_cfg: Any = None) -> list[str]:
        """Settings that cannot work with this generator (its class and config) or reward (named by
        key), before any work."""
        return []
