"""score: V-JEPA 2 surprise of every candidate.

A candidate keeps its score while its video's content digest and the scoring settings are
unchanged, so regenerating one candidate rescores only that one.
"""

from __future__ import annotations

from pipeline.files import file_digest
from pipeline.stages.base import Output, Stage


def build_vjepa2_scorer(cfg):
    from pipeline.devices import resolve_device
    from pipeline.reward.model import load_world_model, resolve_precision
    from pipeline.reward.surprise import SurpriseScorer

    r = cfg.reward
    device = resolve_device(r.device)
    dtype, tf32 = resolve_precision(r.dtype, device)
    model = load_world_model(r.variant, r.checkpoint, arch=r.arch, weights=r.weights, device=device, dtype=dtype)
    return SurpriseScorer(
        model,
        window_size=r.window_size,
        context_frames=r.context_frames,
        stride=r.stride,
        aggregate=r.aggregate,
        max_frames=r.max_frames,
        batch_windows=r.batch_windows,
        allow_tf32=tf32,
    )


SCORERS = {"vjepa2_surprise": build_vjepa2_scorer}


class Score(Stage):
    name = "score"
    upstream = ("sample",)

    def preflight(self) -> None:
        from pipeline.errors import StageError
        from pipeline.reward.checkpoints import RewardModelError
        from pipeline.reward.model import check_reward_config

        try:
            check_reward_config(self.cfg.reward)
        except RewardModelError as exc:
            raise StageError(f"reward.checkpoint: {exc}") from None

    def setup(self) -> None:
        self.scorer = SCORERS[self.cfg.reward.name](self.cfg)
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
        for (name, rel), seed in zip(sorted(sample.outputs.items()), sample.data["seeds"]):
            digest = file_digest(self.store.path(rel))
            entry = known.get(digest)
            if entry is None:
                entry = self._score(self.store.path(rel))
                self.scored += 1
            candidates.append({**entry, "name": name, "seed": seed, "video": rel, "sha256": digest})
        return Output(data={"candidates": candidates})

    def _score(self, path) -> dict:
        """One candidate's entry. A non-finite surprise is kept as an error of that candidate
        (select passes it over and says why); the item's other candidates still count."""
        from pipeline.reward.surprise import NonFiniteSurpriseError

        try:
            result = self.scorer.score_video(path)
        except NonFiniteSurpriseError as exc:
            return {"surprise": None, "error": str(exc), "settings": self.scorer.settings}
        return {
            "surprise": result.surprise,
            "windows": result.window_surprises,
            "frames_used": result.num_frames_used,
            "settings": self.scorer.settings,
        }
