"""CogVideoX through diffusers' ``CogVideoXImageToVideoPipeline`` (I2V) or ``CogVideoXPipeline``
(T2V), whichever the folder's ``model_index.json`` names; the shared loading, batching, prompt
cache, adapter and step hooks are ``diffusers_video.py``.

CogVideoX holds latents frames-first (B, F, C, h, w) and predicts v (v-prediction, DDIM or
DPM-Solver schedulers): the guide gets them channels-first with the clean estimate
x0 = sqrt(a) x - sqrt(1 - a) v of the step's cumulative alpha a, written as t = 0 and
v' = x0 - x (``_step_state``). The value is exact; its derivative in x is 1 rather than sqrt(a),
a positive factor the guide's normalised step does not see.

Frames: CogVideoX 1.0 makes 49 frames at 8 fps (6 s after the condition frame), 1.5 makes 81 at
16 fps (5 s). The conform stage drops the condition frame and keeps the first 5 s, recording
what it trimmed; nothing is resampled (a 6 s clip squeezed into 5 s would speed physics up).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..base import GenerationRequest, GeneratorConfigError
from ..diffusers_video import DiffusersVideoGenerator, missing_pipeline_files, read_json
from .spec import CogVideoXGeneratorConfig

I2V, T2V = "CogVideoXImageToVideoPipeline", "CogVideoXPipeline"
REQUIRED_COMPONENTS = ("tokenizer", "text_encoder", "vae", "scheduler")


def pipeline_class_of(path: str | os.PathLike) -> str:
    """I2V or T2V by the folder's ``model_index.json`` (I2V while it cannot be read)."""
    name = read_json(Path(path) / "model_index.json").get("_class_name", I2V)
    return T2V if name == T2V else I2V


def transformer_config(checkpoint: str | os.PathLike, transformer: str | os.PathLike | None) -> dict:
    """The transformer's config.json: of the swapped-in folder (a transformer folder, or a pipeline
    folder's transformer/) when there is one, else the pipeline's."""
    source = Path(transformer or checkpoint)
    return read_json(source / "transformer" / "config.json") or read_json(source / "config.json")


def geometry_problems(
    checkpoint: str | os.PathLike, transformer: str | os.PathLike | None, width: int, height: int, num_frames: int
) -> list[str]:
    """Sizes and frame counts the folder's VAE and transformer can make (CogVideoX 1.0 defaults
    while the folder is not there)."""
    tr = transformer_config(checkpoint, transformer)
    vae = read_json(Path(checkpoint) / "vae" / "config.json")
    t_factor = int(vae.get("temporal_compression_ratio") or 4)
    s_factor = 2 ** (len(vae.get("block_out_channels") or [0, 0, 0, 0]) - 1)
    patch = int(tr.get("patch_size") or 2)
    out = []
    # the VAE decodes an odd number of latent frames to 1 + 4 (n - 1) frames (an even number loses
    # the first frame's special case): num_frames = 2 * 4 k + 1
    step = 2 * t_factor
    if (num_frames - 1) % step:
        lo = (num_frames - 1) // step * step + 1
        out.append(f"generator.num_frames={num_frames}: CogVideoX makes {step}k+1 frames (e.g. {lo} or {lo + step})")
    mult = s_factor * patch
    if width % mult or height % mult:
        out.append(f"generator.width x generator.height={width}x{height}: must be multiples of {mult}")
    elif tr.get("use_learned_positional_embeddings"):
        # CogVideoX-5B I2V learned its position table at one size: diffusers refuses any other
        size = (int(tr["sample_width"]) * s_factor, int(tr["sample_height"]) * s_factor)
        if (width, height) != size:
            out.append(
                f"generator.width x generator.height={width}x{height}: this transformer's learned "
                f"positional embeddings fix the size at {size[0]}x{size[1]}"
            )
    return out


class CogVideoXGenerator(DiffusersVideoGenerator):
    kind = "cogvideox"
    transformer_class = "CogVideoXTransformer3DModel"
    required_components = REQUIRED_COMPONENTS
    frames_first = True

    @classmethod
    def missing_checkpoint_files(cls, path: str | os.PathLike) -> list[str]:
        return missing_pipeline_files(path, REQUIRED_COMPONENTS)

    @classmethod
    def settings_problems(cls, cfg: CogVideoXGeneratorConfig) -> list[str]:
        out = []
        if cfg.transformer is not None and not Path(cfg.transformer).is_dir():
            out.append(f"generator.transformer={cfg.transformer}: not a folder")
        return out + cls.common_problems(cfg)

    @classmethod
    def geometry_problems(cls, path: str | os.PathLike, width: int, height: int, num_frames: int) -> list[str]:
        return []  # checked with the transformer, which may come from another folder (below)

    @classmethod
    def common_problems(cls, cfg: Any) -> list[str]:
        return super().common_problems(cfg) + geometry_problems(
            cfg.checkpoint, cfg.transformer, cfg.width, cfg.height, cfg.num_frames
        )

    @classmethod
    def takes_images(cls, cfg: CogVideoXGeneratorConfig) -> bool:
        return pipeline_class_of(cfg.checkpoint) == I2V

    @classmethod
    def engine_kwargs(cls, cfg: CogVideoXGeneratorConfig) -> dict[str, Any]:
        return {"dynamic_cfg": cfg.dynamic_cfg, "transformer": cfg.transformer}

    def __init__(
        self,
        path: str | os.PathLike,
        width: int = 720,
        height: int = 480,
        num_frames: int = 49,
        fps: float = 8,
        num_inference_steps: int = 50,
        guidance_scale: float = 6.0,
        dynamic_cfg: bool = True,
        batch_size: int = 1,
        device: str = "cpu",
        dtype: str = "float32",
        negative_prompt: str = "",
        transformer: str | os.PathLike | None = None,
        adapter: str | os.PathLike | None = None,
        adapter_scale: float = 1.0,
    ) -> None:
        self.pipeline_name = pipeline_class_of(path)
        self.dynamic_cfg = bool(dynamic_cfg)
        problems = geometry_problems(path, transformer, width, height, num_frames)
        if problems:
            raise GeneratorConfigError("; ".join(problems))
        tr = transformer_config(path, transformer)
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
            vae_dtype=None,  # the CogVideoX recipes run the VAE in the model's dtype
            negative_prompt=negative_prompt,
            max_sequence_length=int(tr.get("max_text_seq_length") or 226),
            transformer=transformer,
            adapter=adapter,
            adapter_scale=adapter_scale,
        )
        # CogVideoX 1.5 pads the latent frames to a multiple of its temporal patch, in front
        latent_frames = (self._num_frames - 1) // self.pipe.vae_scale_factor_temporal + 1
        p_t = self.pipe.transformer.config.patch_size_t
        self.padding_frames = (-latent_frames) % p_t if p_t else 0

    def pipeline_class_name(self) -> str:
        return self.pipeline_name

    def check_request(self, req: GenerationRequest) -> None:
        if self.pipeline_name == I2V:
            return super().check_request(req)
        if req.condition is not None:
            raise ValueError(f"{self.path} is a text-to-video CogVideoX folder: a request cannot carry a condition")
        if isinstance(req.seed, bool) or not isinstance(req.seed, (int, np.integer)):
            raise ValueError(f"seed must be an int, got {req.seed!r}")

    def decode_pixels(self, latent):
        """Latents (B, C, F, h, w) (the guide's layout) -> float frames (B, T, H, W, 3) on the 0..255
        scale with the graph kept: the pipeline's decode (1.5's padding frames dropped) and its
        [-1, 1] -> [0, 1] mapping, not rounded."""
        vae = self.pipe.vae
        z = latent[:, :, self.padding_frames :].to(device=vae.device, dtype=vae.dtype)
        video = vae.decode(z / self.pipe.vae_scaling_factor_image).sample
        self.vae_decodes += int(latent.shape[0])
        return ((video.float() / 2 + 0.5).clamp(0, 1) * 255.0).permute(0, 2, 3, 4, 1)

    def _step_state(self, i: int, model_output, timestep, sample):
        from ..magi1.sampler import StepState

        torch = self._torch
        sched = self.pipe.scheduler
        a = sched.alphas_cumprod[int(timestep)].to(sample.device, torch.float32)
        x = sample.float().transpose(1, 2)
        pred = model_output.float().transpose(1, 2)
        if sched.config.prediction_type == "v_prediction":
            x0 = a.sqrt() * x - (1 - a).sqrt() * pred
        else:  # epsilon
            x0 = (x - (1 - a).sqrt() * pred) / a.sqrt()
        return StepState(i, (0,), (i,), torch.tensor([0.0]), x, x0 - x, x.shape[2], self.num_inference_steps)

    def _call_pipe(self, first: GenerationRequest, pos, neg, gens, kwargs):
        if self.pipeline_name == I2V:
            import PIL.Image

            # one image per row: each row's image latent is drawn with that row's generator
            kwargs["image"] = [PIL.Image.fromarray(np.ascontiguousarray(first.condition))] * len(gens)
        return self.pipe(
            prompt=None,
            negative_prompt=None,
            prompt_embeds=pos,
            negative_prompt_embeds=neg,
            height=self._height,
            width=self._width,
            num_frames=self._num_frames,
            num_inference_steps=self.num_inference_steps,
            guidance_scale=self.guidance_scale,
            use_dynamic_cfg=self.dynamic_cfg,
            generator=gens,
            output_type="np",
            return_dict=False,
            max_sequence_length=self.max_sequence_length,
            **kwargs,
        )[0]


__all__ = ["CogVideoXGenerator", "I2V", "T2V"]
