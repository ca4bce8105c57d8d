"""select: the candidate with the lowest surprise per item (reward = -surprise)."""
from __future__ import annotations

import math

from pipeline.stages.base import Output, Stage


def argmin_surprise(candidates: list[dict]) -> dict:
    bad = [c["name"] for c in candidates if not math.isfinite(c["surprise"])]
    if bad:
        raise ValueError(f"non-finite surprise for candidate(s) {bad}: refusing to select")
    # Ties go to the lowest seed, so the choice never depends on dict or file order.
    return min(candidates, key=lambda c: (c["surprise"], c["seed"]))


class Select(Stage):
    name = "select"
    upstream = ("score",)

    def run(self, item_id: str) -> Output:
        candidates = self.store.read("score", item_id).data["candidates"]
        best = argmin_surprise(candidates)
        return Output(data={"chosen": best["name"], "seed": best["seed"], "surprise": best["surprise"],
                            "video": best["video"], "n": len(candidates)})
