"""Rank fusion: one score per candidate of an item from several per-candidate values.

The rule (ours; GeoPhys, arXiv 2606.20707, publishes its five statistics but not how its
best-of-N combines them): for each column (a statistic, or a verifier's surprise) rank the
candidates from most plausible (smallest value) to least, ties sharing their average rank and a
non-finite value ranking last (a candidate whose statistic cannot be computed is never preferred
for it); scale each rank to [0, 1] as (rank - 1) / (n - 1); a candidate's fused surprise is the
mean of its scaled ranks over the columns. Lower is better, as for every surprise here, and a lone
candidate scores 0. Ranks make columns of different units comparable without a calibration set,
and one wild value moves a candidate by at most one rank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def scaled_ranks(values: Sequence[float]) -> list[float]:
    """(rank - 1) / (n - 1) of each value, smallest first, average ranks for ties, non-finite last."""
    n = len(values)
    if n == 0:
        return []
    if n == 1:
        return [0.0]
    keyed = [(v if math.isfinite(v) else math.inf) for v in map(float, values)]
    order = sorted(range(n), key=lambda i: keyed[i])
    ranks = [0.0] * n
    start = 0
    while start < n:
        end = start
        while end + 1 < n and keyed[order[end + 1]] == keyed[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2  # 0-based average rank of the tie
        start = end + 1
    return [r / (n - 1) for r in ranks]


def rank_fuse(columns: Sequence[Sequence[float]]) -> list[float]:
    """The fused surprise of each candidate: the mean over ``columns`` (each one value per
    candidate, in the same candidate order) of its scaled rank."""
    if not columns:
        raise ValueError("rank fusion needs at least one column")
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise ValueError(f"every column must hold one value per candidate ({n}); got {[len(c) for c in columns]}")
    ranked = [scaled_ranks(c) for c in columns]
    return [sum(r[i] for r in ranked) / len(ranked) for i in range(n)]
