"""Splitting pending items into shards of balanced estimated cost.

Longest-processing-time first: items sorted by cost, each given to the currently lightest shard.
Its makespan is within 4/3 of the optimum, where the reference's contiguous chunks can put every
expensive item on one node. Within a shard, the replicas of the job claim items one at a time,
so estimates only need to be roughly right.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field


@dataclass
class Shard:
    index: int
    items: list[str] = field(default_factory=list)
    cost: float = 0.0


def balanced_shards(costs: dict[str, float], max_shards: int) -> list[Shard]:
    """At most ``max_shards`` non-empty shards; item order inside a shard follows the input order."""
    if not costs:
        return []
    n = max(1, min(max_shards, len(costs)))
    order = {item: i for i, item in enumerate(costs)}
    heap = [(0.0, k) for k in range(n)]
    assigned: list[list[str]] = [[] for _ in range(n)]
    loads = [0.0] * n
    for item in sorted(costs, key=lambda i: (-costs[i], order[i])):
        load, k = heapq.heappop(heap)
        assigned[k].append(item)
        loads[k] = load + costs[item]
        heapq.heappush(heap, (loads[k], k))
    shards = [Shard(k, sorted(items, key=order.__getitem__), loads[k]) for k, items in enumerate(assigned)]
    return [s for s in shards if s.items]


def contiguous_chunks(items: list[str], parts: int) -> list[list[str]]:
    """The reference implementation's split: ceil(n / parts) consecutive items per worker."""
    size = math.ceil(len(items) / parts)
    return [items[k * size:(k + 1) * size] for k in range(parts) if items[k * size:(k + 1) * size]]
