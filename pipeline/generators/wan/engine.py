"""Wan 2.1 / 2.2 image-to-video generator on top of diffusers' ``WanImageToVideoPipeline``
(the shared loading, batching, prompt cache and step hooks are ``diffusers_video.py``). A Wan 2.2
A14B folder's two experts are switched by the pipeline at the boundary ratio its
``model_index.json`` records; both get the NFE counter and the adapter.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..base import GenerationRequest
from ..diffusers_video import DiffusersVideoGenerator, missing_pipeline_files, read_json
from .spec import WanI2VGeneratorConfig

__all__ = ["WanI2VGenerator", "missing_checkpoint_files", "DEFAULT_NEGATIVE_PROMPT"]

# Standard English negative prompt of the Wan I2V examples.
DEFAULT_NEGATIVE_PROMPT = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, "
    "overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, "
    "poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, "
    "messy background, three legs, many people in the background, walking backwards"
)
REQUIRED_COMPONENTS = ("tokenizer", "text_encoder", "vae", "scheduler")


def missing_checkpoint_files(path: str | os.PathLike) -> list[str]:
    """What a diffusers Wan I2V folder lacks (empty list = looks complete)."""
    return missing_pipeline_files(path, REQUIRED_COMPONENTS)


def geometry_problems(path: str | os.PathLike, width: int, height: int, num_frames: int) -> list[str]:
    """Sizes and frame counts the checkpoint's VAE and transformer can make (their config.json
    factors; Wan 2.1/2.2 I2V defaults while the folder is not there): one entry per key."""
    root = Path(path)
    vae_cfg = read_json(root / "vae" / "config.json")
    t_name = "transformer" if (root / "transformer").is_dir() else "transformer_2"
    tr_cfg = read_json(root / t_name / "config.json")
    t_factor = int(vae_cfg.get("scale_factor_temporal") or 4)
    s_factor = int(vae_cfg.get("scale_factor_spatial") or 8)
    patch = tr_cfg.get("patch_size") or [1, 2, 2]
    size_mult_h = math.lcm(16, s_factor * int(patch[1]))
    size_mult_w = math.lcm(16, s_factor * int(patch[2]))
    out = []
    if (num_frames - 1) % t_factor != 0:
        lo = (num_frames - 1) // t_factor * t_factor + 1
        out.append(f"generator.num_frames={num_frames}: Wan makes {t_factor}k+1 frames (e.g. {lo} or {lo + t_factor})")
    if height % size_mult_h or width % size_mult_w:
        out.append(
            f"generator.width x generator.height={width}x{height}: must be multiples of "
            f"{size_mult_w} x {size_mult_h} (VAE spatial factor {s_factor} x patch size {list(patch)[1:]})"
        )
    return out


class WanI2VGenerator(DiffusersVideoGenerator):
    """``WanImageToVideoPipeline`` as a generator (``DiffusersVideoGenerator``); the VAE stays in
    fp32 by default, as the Wan examples recommend. ``guidance_scale_2``: the low-noise expert's
    scale of a two-expert (Wan 2.2 A14B) folder."""

    kind = "wan_i2v"
    pipeline_class = "WanImageToVideoPipeline"
    transformer_class = "WanTransformer3DModel"
    required_components = REQUIRED_COMPONENTS

    @classmethod
    def geometry_problems(cls, path: str | os.PathLike, width: int, height: int, num_frames: int) -> list[str]:
        return geometry_problems(path, width, height, num_frames)

    @classmethod
    def settings_problems(cls, cfg: WanI2VGeneratorConfig) -> list[str]:
        """What is wrong with a ``WanI2VGeneratorConfig`` before any weight is read (one entry per key)."""
        out = []
        index = read_json(Path(cfg.checkpoint) / "model_index.json")
        if cfg.guidance_scale_2 is not None and index and index.get("boundary_ratio") is None:
            out.append(
                f"generator.guidance_scale_2={cfg.guidance_scale_2}: {cfg.checkpoint} has one transformer "
                "(no boundary_ratio in model_index.json); the low-noise expert's scale is for Wan 2.2 A14B"
            )
        return out + cls.common_problems(cfg)

    @classmethod
    def engine_kwargs(cls, cfg: WanI2VGeneratorConfig) -> dict[str, Any]:
        return {"guidance_scale_2": cfg.guidance_scale_2}

    def __init__(
        self,
        path: str | os.PathLike,
        width: int = 832,
        height: int = 480,
        num_frames: int = 81,
        fps: float = 16,
        num_inference_steps: int = 40,
        guidance_scale: float = 5.0,
        batch_size: int = 1,
        device: str = "cpu",
        dtype: str = "float32",
        vae_dtype: str | None = "float32",
        negative_prompt: str = DEFAULT_NEGATIVE_PROMPT,
        guidance_scale_2: float | None = None,
        max_sequence_length: int = 512,
        prompt_cache_size: int = 128,
        adapter: str | os.PathLike | None = None,
        adapter_scale: float = 1.0,
    ) -> None:
        self.guidance_scale_2 = None if guidance_scale_2 is None else float(guidance_scale_2)
        super().__init__(
            path,
            width,
            height,
            num_frames,
            fps,
            num_inference_steps,
            guidance_scale,
            batch_size=batch_size,
            device=device,
            dtype=dtype,
            vae_dtype=vae_dtype,
            negative_prompt=negative_prompt,
            max_sequence_length=max_sequence_length,
            prompt_cache_size=prompt_cache_size,
            adapter=adapter,
            adapter_scale=adapter_scale,
        )

    def _latent_stats(self, latents):
        vae = self.pipe.vae
        shape = (1, vae.config.z_dim, 1, 1, 1)
        mean = self._torch.tensor(vae.config.latents_mean).view(shape).to(latents.device, latents.dtype)
        std = self._torch.tensor(vae.config.latents_std).view(shape).to(latents.device, latents.dtype)
        return mean, std

    def decode_pixels(self, latent):
        """Latents (B, z, t, h, w) as the pipeline holds them -> float frames (B, T, H, W, 3) on the
        0..255 scale with the graph kept: the pipeline's own decode and [-1, 1] -> [0, 1] mapping,
        not rounded."""
        vae = self.pipe.vae
        z = latent.to(device=vae.device, dtype=vae.dtype)
        mean, std = self._latent_stats(z)
        video = vae.decode(z * std + mean, return_dict=False)[0]
        self.vae_decodes += int(latent.shape[0])
        return ((video.float() / 2 + 0.5).clamp(0, 1) * 255.0).permute(0, 2, 3, 4, 1)

    def _step_state(self, i: int, model_output, timestep, sample):
        """Flow matching: sigma of step i; t = 1 - sigma and v = -(flow prediction), so the clean
        estimate x + (1 - t) v is Wan's x - sigma * v_wan."""
        from ..magi1.sampler import StepState

        torch = self._torch
        sigma = float(self.pipe.scheduler.sigmas[i])
        x = sample.float()
        return StepState(
            i, (0,), (i,), torch.tensor([1.0 - sigma]), x, -model_output.float(), x.shape[2], self.num_inference_steps
        )

    def _call_pipe(self, first: GenerationRequest, pos, neg, gens, kwargs):
        import PIL.Image

        if self.guidance_scale_2 is not None:
            kwargs["guidance_scale_2"] = self.guidance_scale_2
        return self.pipe(
            image=PIL.Image.fromarray(np.ascontiguousarray(first.condition)),
            prompt=None,
            negative_prompt=None,
            prompt_embeds=pos,
            negative_prompt_embeds=neg,
            height=self._height,
            width=self._width,
            num_frames=self._num_frames,
            num_inference_steps=self.num_inference_steps,
            guidance_scale=self.guidance_scale,
            generator=gens,
            output_type="np",
            return_dict=False,
            **kwargs,
        )[0]
