"""Search strategies: how the candidates of one item are drawn.

Best-of-N is the only one so far: candidate k uses seed base_seed + k, so growing N keeps the
candidates already made. Guidance and particle search will register here.
"""

from __future__ import annotations


def best_of_n_seeds(search) -> list[int]:
    return [search.base_seed + k for k in range(search.n)]


STRATEGIES = {"best_of_n": best_of_n_seeds}


def candidate_seeds(search) -> list[int]:
    return STRATEGIES[search.name](search)
