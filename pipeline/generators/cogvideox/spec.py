"""CogVideoX image- and text-to-video through diffusers: its ``generator.*`` schema and registry entry."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.fields import at_least, setting
from pipeline.registry import Spec

from ..base import GeneratorConfig


@dataclass
class CogVideoXGeneratorConfig(GeneratorConfig):
    """A diffusers-format CogVideoX folder (``checkpoint``): its ``model_index.json`` says I2V
    (CogVideoXImageToVideoPipeline) or T2V (CogVideoXPipeline)."""

    kind: str = "cogvideox"
    steps: int = setting(50, check=at_least(1))
    guidance_scale: float = setting(6.0, check=at_least(0))
    dynamic_cfg: bool = True  # the CogVideoX-5B recipe: the CFG scale rises on a cosine over the steps
    negative_prompt: str = ""
    # a fine-tuned transformer in diffusers format replacing the folder's (VideoREPA's CogVideoX-5B):
    # a transformer folder, or a pipeline folder whose transformer/ is taken
    transformer: str | None = None
    adapter: str | None = None  # a velocity-field adapter folder (pipeline/generators/adapter.py)
    adapter_scale: float = 1.0


SPEC = Spec("cogvideox", CogVideoXGeneratorConfig, "pipeline.generators.cogvideox.engine:CogVideoXGenerator")
