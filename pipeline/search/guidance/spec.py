"""Reward gradient guidance (WMReward): its ``search.*`` schema and registry entry."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.fields import at_least, between, one_of, operational, setting
from pipeline.registry import Spec

from ..base import SearchConfig
from .steps import pattern_check


@dataclass
class GuidanceConfig(SearchConfig):
    name: str = "guidance"
    n: int = setting(1, check=at_least(1))  # guided candidates; select keeps the lowest final surprise
    base_seed: int = setting(0, check=at_least(0))  # candidate k starts from seed base_seed + k
    scale: float = setting(0.001, check=at_least(0))  # x <- x - scale * |x| / |g| * g; 0 = unguided
    frequency: int = setting(5, check=at_least(1))  # guide every frequency-th forward step
    start: float = setting(0.0, check=between(0, 1))  # guided part of the chunk's schedule: [start, end)
    end: float = setting(1.0, check=between(0, 1))
    pattern: str | None = setting(None, check=pattern_check)  # updates per step, e.g. 0x5,1x45
    chunks: str = setting("nearest_clean", check=one_of("nearest_clean", "window"))  # which chunks move
    # the gradient of x-hat = x + (1 - t) v: through x with v held (clean_estimate), or through the
    # generator's forward too (model: v recomputed with grad, one more set of passes per update)
    gradient: str = setting("clean_estimate", check=one_of("clean_estimate", "model"))
    decode_scale: float = setting(1.0, check=between(0.05, 1))  # latent downscale before the decode
    context_frames: int | None = setting(None, check=at_least(0))  # clean frames before; None: reward's
    worst_window: bool = False  # back-propagate only each candidate's worst window
    checkpointing: bool = operational(False)  # recompute activations in backward (model, VAE, reward)


SPEC = Spec("guidance", GuidanceConfig, "pipeline.search.guidance.strategy:Guidance")
