"""V-JEPA 2 surprise: its ``reward.*`` schema and registry entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pipeline.fields import at_least, one_of, operational, setting
from pipeline.registry import Spec

from ..base import RewardConfig

# variants.VARIANT_CHOICES and model.resolve_precision, spelled out so the spec imports no torch
VARIANT_CHOICES = ("tiny", "vitl", "vith", "vitg", "vitg384", "custom", "hf")
DTYPES = ("float32", "tf32", "bfloat16", "float16", "auto")


@dataclass
class VJEPA2SurpriseConfig(RewardConfig):
    run_key_type: ClassVar[str] = "RewardConfig"  # its name before the registry: run folders keep their keys
    name: str = "vjepa2_surprise"
    variant: str = setting(
        "tiny", check=one_of(*VARIANT_CHOICES)
    )  # tiny | vitl | vith | vitg | vitg384 (official .pt) | custom (+ arch) | hf (HF folder)
    # Official .pt file, or a folder holding the variant's file (vitg.pt, vitg-384.pt, ...), or the
    # HF folder for variant=hf. None: $VJEPA_CHECKPOINT_DIR/<variant file>.
    checkpoint: str | None = None
    arch: str | None = None  # variant=custom: ARCH.json with encoder/predictor constructor arguments
    weights: str = setting(
        "target_encoder", check=one_of("target_encoder", "encoder")
    )  # encoder weights of an official .pt: target_encoder (EMA, hub) | encoder
    window_size: int = setting(16, check=at_least(2))
    context_frames: int = setting(8, check=at_least(1))  # a whole number of tubelets, < window_size
    stride: int = setting(2, check=at_least(1))
    aggregate: str = setting("mean", check=one_of("mean", "max"))  # over windows
    max_frames: int | None = setting(
        None, check=at_least(1)
    )  # None = all frames; 49 = the reference CLI's uniform subsample
    dtype: str = setting(
        "float32", check=one_of(*DTYPES)
    )  # float32 | tf32 (CUDA matmuls) | bfloat16 | float16 | auto (bf16 on CUDA, else fp32)
    batch_windows: int = operational(8, check=at_least(1))  # windows (of one or several clips) per forward


SPEC = Spec("vjepa2_surprise", VJEPA2SurpriseConfig, "pipeline.rewards.vjepa2.reward:VJEPA2Surprise")
