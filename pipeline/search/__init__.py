"""Search strategies: how the candidates of one item are made, found by ``search.name``. One
registry entry per strategy, declared in its folder's ``spec.py`` (see ``pipeline.registry``); a
registered strategy is a ``base.Strategy``: best-of-N lists independent seeds, beam and SMC drive a
generation session with the reward inside it (``chunk_search.py``).
"""

from __future__ import annotations

from pipeline.registry import Registry

from .base import SearchConfig

STRATEGIES = Registry("pipeline.search", "search")


def candidate_seeds(search: SearchConfig) -> list[int]:
    """The seeds of a strategy whose candidates are independent generations (best-of-N)."""
    return STRATEGIES.of(search).seeds(search)


def num_candidates(search: SearchConfig) -> int:
    return STRATEGIES.of(search).num_candidates(search)


__all__ = ["STRATEGIES", "SearchConfig", "candidate_seeds", "num_candidates"]
