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


def budget_problems(search: SearchConfig, nfe_per_candidate: int | None) -> list[str]:
    """``search.budget_nfe`` against what an item will spend (every candidate's rows run to the
    end, so candidates x NFEs per candidate); nothing to say when either is unknown."""
    budget = search.budget_nfe
    if budget is None or nfe_per_candidate is None:
        return []
    n = num_candidates(search)
    if n * nfe_per_candidate <= budget:
        return []
    return [
        f"search.budget_nfe={budget}: search={search.name} makes {n} candidate(s) of {nfe_per_candidate} "
        f"NFEs each ({n * nfe_per_candidate} per item); lower the candidates or generator steps, or raise the budget"
    ]


__all__ = ["STRATEGIES", "SearchConfig", "budget_problems", "candidate_seeds", "num_candidates"]
