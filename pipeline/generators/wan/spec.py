"""Wan 2.1 / 2.2 image-to-video through diffusers: its ``generator.*`` schema and registry entry.

One schema for both: a Wan 2.2 A14B folder has a second transformer (``transformer_2``, the
low-noise expert) and a ``boundary_ratio`` in ``model_index.json``, which the pipeline reads."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.fields import at_least, setting
from pipeline.registry import Spec

from ..base import GeneratorConfig


@dataclass
class WanI2VGeneratorConfig(GeneratorConfig):
    """A diffusers-format Wan I2V folder (``checkpoint``) and its sampler settings."""

    kind: str = "wan_i2v"
    steps: int = setting(40, check=at_least(1))
    guidance_scale: float = setting(5.0, check=at_least(0))
    negative_prompt: str = ""
    # Wan 2.2 A14B: the low-noise expert's classifier-free guidance scale (None: guidance_scale)
    guidance_scale_2: float | None = setting(None, check=at_least(0), key_default=False)
    adapter: str | None = setting(None, key_default=False)  # a velocity-field adapter folder (adapter.py)
    adapter_scale: float = setting(1.0, key_default=False)  # weight of its correction


SPEC = Spec("wan_i2v", WanI2VGeneratorConfig, "pipeline.generators.wan.engine:WanI2VGenerator")
