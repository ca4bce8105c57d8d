"""MAGI-1: its ``generator.*`` schema and registry entry (no torch import)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from pipeline.fields import at_least, one_of, operational, setting
from pipeline.registry import Spec

from ..base import GeneratorConfig
from .config import VARIANTS as MAGI_VARIANTS


@dataclass
class Magi1Parallel:
    """How one model copy spreads over the ranks of a replica (``parallelize.Layout``): the
    replica's ranks are cfg x sp x tp, one per GPU."""

    cfg: int = setting(1, check=at_least(1))  # CFG passes of a base model's step on separate ranks (1-3)
    sp: int = setting(1, check=at_least(1))  # Ulysses sequence parallelism (the official cp_size)
    tp: int = setting(1, check=at_least(1))  # tensor parallelism (Megatron column/row split)


@dataclass
class Magi1GeneratorConfig(GeneratorConfig):
    """MAGI-1 (our PyTorch implementation, official checkpoints). ``checkpoint`` is the DiT folder
    (the official ``runtime_config.load``: it holds ``inference_weight[.distill]/``). ``None`` fields
    take their value from ``magi_config`` (an official MagiConfig JSON) or else the variant preset."""

    kind: str = "magi1"
    variant: str = setting(
        "4.5b_distill", check=one_of(*MAGI_VARIANTS)
    )  # 24b | 24b_distill | 4.5b | 4.5b_distill | tiny
    magi_config: str | None = None  # official MagiConfig JSON (example/4.5B/4.5B_base_config.json)
    distill: bool | None = None  # None = from the variant / magi_config
    steps: int | None = setting(None, check=at_least(1))  # num_steps; divisible by 4
    text_scale: float | None = setting(None, check=at_least(0))  # cfg text scale of stages 0-2 (cfg_number 3)
    history_scale: float | None = setting(None, check=at_least(0))  # cfg previous-chunk scale of stages 0-2
    t5_checkpoint: str = MISSING  # folder holding t5-v1_1-xxl/
    vae_checkpoint: str = MISSING  # ViTVAE folder (config.json + weights)
    special_tokens: str | None = None  # special_tokens.npz (PAD_HQ / PAD_DURATION tokens); None = off
    # ranks per model copy, cfg x sp x tp: the same videos on any layout, so not part of the run key
    parallel: Magi1Parallel = operational(factory=Magi1Parallel)


SPEC = Spec("magi1", Magi1GeneratorConfig, "pipeline.generators.magi1.engine:Magi1Generator")
