"""WMReward gradient guidance: ``n`` candidates (seeds base_seed + k), each nudged towards a lower
surprise at the guided steps of its generation (``guide.py``); score and select then keep the
lowest final surprise (best-of-N on top of guidance). MAGI-1: the guided chunks are chosen among
those in the window (default the one nearest to clean), the context is the most recent frames of
finished chunks."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..base import Found, Strategy, json_number
from .guide import RewardGuide
from .spec import GuidanceConfig
from .steps import schedule_problems


class Guidance(Strategy):
    in_loop = True

    @staticmethod
    def num_candidates(cfg: GuidanceConfig) -> int:
        return cfg.n

    @staticmethod
    def problems(cfg: GuidanceConfig, generator_class: Any, reward_cfg: Any, generator_cfg: Any = None) -> list[str]:
        if not getattr(generator_class, "steppable", False):
            kind = getattr(generator_class, "kind", generator_class.__name__)
            return [f"search.name=guidance: needs a generator that can be driven step by step; {kind} cannot"]
        out = []
        if not getattr(type(reward_cfg), "differentiable", True):
            out.append(
                f"reward.name={reward_cfg.name}: search.name=guidance follows the gradient of the reward, and "
                f"{reward_cfg.name} ranks candidates, which has none; use it with best_of_n, beam or smc, or "
                "guide with a differentiable reward (vjepa2_surprise)"
            )
        if cfg.gradient == "model" and not getattr(generator_class, "differentiable_steps", False):
            out.append(
                f"search.gradient=model: {generator_class.kind} guidance takes the gradient through the "
                "clean estimate only; set search.gradient=clean_estimate"
            )
        steps = None if generator_cfg is None else generator_class.planned_steps(generator_cfg)
        return out + schedule_problems(cfg, steps)

    @staticmethod
    def run(cfg: GuidanceConfig, generator, request, scorer) -> Found:
        from pipeline.generators.base import GenerationRequest

        seeds = [cfg.base_seed + k for k in range(cfg.n)]
        session = generator.start([GenerationRequest(request.prompt, request.condition, s) for s in seeds])
        guide = RewardGuide(cfg, session, scorer, session.num_steps, session.chunk_offset)
        session.set_gradient_checkpointing(cfg.checkpointing)
        try:
            while session.advance_to_chunk_boundary(guide) is not None:
                pass
        finally:
            session.set_gradient_checkpointing(False)
        videos = session.videos()
        surprises = scorer.surprises(torch.from_numpy(np.stack(videos))).double().cpu().numpy()
        return Found(
            videos=videos,
            seeds=seeds,
            surprises=[json_number(v) for v in surprises],
            trace=guide.trace,
            phases={"guidance": guide.seconds},
        )
