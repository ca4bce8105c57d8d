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


def balanced_shards(costs: dict[str, float], max_shards: int, min_items: int = 1) -> list[Shard]:
    """At most ``max_shards`` non-empty shards of at least ``min_items`` items each (or one shard of
    everything when there are fewer), balanced by cost; item order inside a shard follows the
    input order. ``min_items`` is a job's replica count: a shard that fills its allocation.

    LPT with a count constraint: while the items left are just enough to bring every shard up to
    ``min_items``, each goes to the lightest shard still short of it."""
    if not costs:
        return []
    min_items = max(1, min_items)
    n = max(1, min(max_shards, len(costs) // min_items))
    order = {item: i for i, item in enumerate(costs)}
    assigned: list[list[str]] = [[] for _ in range(n)]
    loads = [0.0] * n
    heap = [(0.0, k) for k in range(n)]
    left = len(costs)
    for item in sorted(costs, key=lambda i: (-costs[i], order[i])):
        short = [k for k in range(n) if len(assigned[k]) < min_items]
        deficit = sum(min_items - len(assigned[k]) for k in short)
        if left <= deficit:
            k = min(short, key=lambda j: (loads[j], j))
            heap.remove((loads[k], k))
            heapq.heapify(heap)
        else:
            _, k = heapq.heappop(heap)
        assigned[k].append(item)
        loads[k] += costs[item]
        heapq.heappush(heap, (loads[k], k))
        left -= 1
    shards = [Shard(k, sorted(items, key=order.__getitem__), loads[k]) for k, items in enumerate(assigned)]
    return [s for s in shards if s.items]


def contiguous_chunks(items: list[str], parts: int) -> list[list[str]]:
    """The reference implementation's split: ceil(n / parts) consecutive items per worker."""
    size = math.ceil(len(items) / parts)
    return [items[k * size : (k + 1) * size] for k in range(parts) if items[k * size : (k + 1) * size]]
