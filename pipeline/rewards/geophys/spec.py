"""GeoPhys-style trajectory verifier: its ``reward.*`` schema and registry entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pipeline.fields import at_least, one_of, operational, setting
from pipeline.registry import Spec

from ..base import RewardConfig

DTYPES = ("float32", "bfloat16", "float16", "auto")
MIN_FRAMES = 4  # two turning angles make a spread (trajectory.py)


@dataclass
class GeoPhysConfig(RewardConfig):
    # ranks candidates against each other: no gradient (guidance refuses it), values relative to an item
    differentiable: ClassVar[bool] = False
    name: str = "geophys"
    # A transformers image-encoder folder (AutoModel.from_pretrained, local files only): DINOv2
    # ViT-L/14 is `huggingface-cli download facebook/dinov2-large --local-dir checkpoints/dinov2-large`.
    checkpoint: str = "checkpoints/dinov2-large"
    # None: the encoder's final output (after its last norm); k: hidden_states[k] (0 the patch
    # embeddings, negative counts from the end)
    layer: int | None = None
    pooling: str = setting("cls", check=one_of("cls", "mean"))  # class token | mean of the patch tokens
    image_size: int = setting(224, check=at_least(1))  # frames squashed to a square of this side
    max_frames: int | None = setting(None, check=at_least(MIN_FRAMES))  # None = all frames; else a uniform subsample
    dtype: str = setting("float32", check=one_of(*DTYPES))  # auto: bf16 on CUDA, else fp32
    batch_frames: int = operational(64, check=at_least(1))  # frames per encoder forward


SPEC = Spec("geophys", GeoPhysConfig, "pipeline.rewards.geophys.reward:GeoPhys")
