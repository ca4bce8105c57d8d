"""select: the candidate with the lowest surprise per item (reward = -surprise)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.stages.base import Output, Stage


def unusable(candidate: dict) -> str | None:
    """Why a scored candidate cannot be chosen, or None."""
    surprise = candidate.get("surprise")
    if candidate.get("error"):
        return candidate["error"].splitlines()[0]
    if not isinstance(surprise, (int, float)) or not math.isfinite(surprise):
        return f"surprise is {surprise}"
    return None


def argmin_surprise(candidates: list[dict]) -> tuple[dict, dict[str, str]]:
    """(the candidate with the lowest finite surprise, {candidate: why it was passed over})."""
    excluded = {c["name"]: why for c in candidates if (why := unusable(c))}
    usable = [c for c in candidates if c["name"] not in excluded]
    if not usable:
        raise ValueError(
            "no candidate has a finite surprise: " + "; ".join(f"{name}: {why}" for name, why in excluded.items())
        )
    # Ties go to the lowest seed, so the choice never depends on dict or file order.
    return min(usable, key=lambda c: (c["surprise"], c["seed"])), excluded


@dataclass(frozen=True)
class SelectSections:
    """The config sections select reads."""

    pass


class Select(Stage[SelectSections]):
    name = "select"
    sections = SelectSections
    upstream = ("score",)

    def run(self, item_id: str) -> Output:
        candidates = self.store.require("score", item_id).data["candidates"]
        best, excluded = argmin_surprise(candidates)
        return Output(
            data={
                "chosen": best["name"],
                "seed": best["seed"],
                "surprise": best["surprise"],
                "video": best["video"],
                "n": len(candidates),
                "excluded": excluded,
            }
        )
