"""score: the reward (V-JEPA 2 surprise by default) of every candidate.

A relative verifier (GeoPhys, an ensemble) scores each candidate on its own, then ranks the
candidates of the item against each other: its surprise is the fused rank.

A candidate keeps its score while its video's content digest and the scoring settings are
unchanged, so regenerating one candidate rescores only that one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.compute import measured
from pipeline.files import file_digest
from pipeline.stages.base import Output, Stage

if TYPE_CHECKING:
    from pipeline.rewards.base import RewardConfig


@dataclass(frozen=True)
class ScoreSections:
    """The config sections score reads."""

    reward: RewardConfig


def candidate_order(outputs: dict[str, str]) -> list[tuple[str, str]]:
    """The sample record's candidates in index order (``cand07`` < ``cand100``; by name alone
    ``cand100`` would come before ``cand11`` and meet the wrong seed)."""
    return sorted(outputs.items(), key=lambda kv: int(kv[0].removeprefix("cand")))


class Score(Stage[ScoreSections]):
    name = "score"
    sections = ScoreSections
    upstream = ("sample",)

    def preflight(self) -> None:
        from pipeline.rewards import check_reward

        check_reward(self.cfg.reward)

    def setup(self) -> None:
        from pipeline.rewards import build_scorer

        self.scorer = build_scorer(self.cfg.reward)
        self.scored = 0

    def close(self) -> None:
        self.scorer = None

    def run(self, item_id: str) -> Output:
        sample = self.store.require("sample", item_id)
        previous = self.store.read(self.name, item_id)
        known = {}
        if previous is not None and previous.done:
            known = {c["sha256"]: c for c in previous.data["candidates"] if c["settings"] == self.scorer.settings}
        candidates = []
        scorer = self.scorer
        with measured({"reward_forwards": lambda: scorer.forwards}) as compute:
            for (name, rel), seed in zip(candidate_order(sample.outputs), sample.data["seeds"]):
                digest = file_digest(self.store.path(rel))
                entry = known.get(digest)
                if entry is None:
                    entry = self._score(self.store.path(rel))
                    self.scored += 1
                candidates.append({**entry, "name": name, "seed": seed, "video": rel, "sha256": digest})
        if getattr(scorer, "relative", False):
            fuse_item(scorer, candidates)
        return Output(data={"candidates": candidates, "compute": compute})

    def _score(self, path) -> dict:
        """One candidate's entry. A non-finite surprise is kept as an error of that candidate
        (select passes it over and says why); the item's other candidates still count."""
        from pipeline.rewards.base import NonFiniteSurpriseError

        try:
            result = self.scorer.score_video(path)
        except NonFiniteSurpriseError as exc:
            return {"surprise": None, "error": str(exc), "settings": self.scorer.settings}
        return {**result.record(), "settings": self.scorer.settings}


def fuse_item(scorer, candidates: list[dict]) -> None:
    """Set the surprise of every scored candidate of an item from its rank among the others
    (a relative verifier, e.g. GeoPhys: its records hold raw statistics, kept alongside)."""
    scored = [c for c in candidates if not c.get("error")]
    for c, fused in zip(scored, scorer.fuse(scored)):
        c["surprise"] = fused
