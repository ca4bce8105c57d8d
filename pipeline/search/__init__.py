"""Search strategies: how the candidates of one item are drawn, found by ``search.name``. One
registry entry per strategy, declared in its folder's ``spec.py`` (see ``pipeline.registry``); a
registered strategy is a class whose ``seeds(cfg)`` lists the seeds of an item's candidates.
"""

from __future__ import annotations

from pipeline.registry import Registry

from .base import SearchConfig

STRATEGIES = Registry("pipeline.search", "search")


def candidate_seeds(search: SearchConfig) -> list[int]:
    return STRATEGIES.of(search).seeds(search)


__all__ = ["STRATEGIES", "SearchConfig", "candidate_seeds"]
