"""Wan 2.1 / 2.2 image-to-video through diffusers: its ``generator.*`` schema and registry entry."""

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


SPEC = Spec("wan_i2v", WanI2VGeneratorConfig, "pipeline.generators.wan.engine:WanI2VGenerator")
