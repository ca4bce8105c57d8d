"""Tiny, randomly initialised CogVideoX pipelines (I2V and T2V) in the diffusers folder format,
saved with ``save_pretrained`` so that ``CogVideoXImageToVideoPipeline.from_pretrained`` /
``CogVideoXPipeline.from_pretrained`` load them exactly as the real folders. The I2V one keeps the
5B I2V traits that matter to the engine: learned positional embeddings (one size only), the
DPM-Solver scheduler with v-prediction and zero-terminal-SNR betas of the real folder's config;
the T2V one uses rotary embeddings only and DDIM. Nothing is downloaded: the tokenizer is trained here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipeline.files import TINY_MARKER, build_folder
from pipeline.tiny_models.tokenizer import build_local_tokenizer

TINY_VERSION = 1
LATENT = 4  # latent channels
SIZE = 64  # pixels: 8 latent rows and columns at the VAE's factor 8
SCHEDULER = {  # CogVideoX-5b-I2V/scheduler/scheduler_config.json, as published
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "set_alpha_to_one": True,
    "snr_shift_scale": 1.0,
    "steps_offset": 0,
    "timestep_spacing": "trailing",
}
TEXT: dict[str, Any] = {"d_model": 32, "d_kv": 16, "d_ff": 64, "num_layers": 1, "num_heads": 2}
MAX_TEXT = 16


def _params(task: str, seed: int) -> dict[str, Any]:
    return {"tiny_version": TINY_VERSION, "task": task, "seed": int(seed)}


def _build(task: str, seed: int):
    import torch
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXDPMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    tokenizer = build_local_tokenizer(400)
    torch.manual_seed(seed)
    vae = AutoencoderKLCogVideoX(
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=LATENT,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    ).eval()  # type: ignore[attr-defined]  # a torch Module; diffusers' annotations hide it
    torch.manual_seed(seed + 1)
    text_encoder = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            dropout_rate=0.0,
            **TEXT,
        )
    ).eval()
    i2v = task == "i2v"
    torch.manual_seed(seed + 2)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=2 * LATENT if i2v else LATENT,  # I2V: the image latents ride along the channels
        out_channels=LATENT,
        time_embed_dim=8,
        text_embed_dim=TEXT["d_model"],
        num_layers=1,
        sample_width=SIZE // 8,
        sample_height=SIZE // 8,
        sample_frames=41,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=MAX_TEXT,
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=i2v,
    ).eval()  # type: ignore[attr-defined]
    if i2v:
        return CogVideoXImageToVideoPipeline(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            vae=vae,
            transformer=transformer,
            scheduler=CogVideoXDPMScheduler(**SCHEDULER),
        )
    return CogVideoXPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=CogVideoXDDIMScheduler(**SCHEDULER),
    )


def make_tiny_cogvideox(out_dir: str | os.PathLike, task: str = "i2v", seed: int = 0) -> Path:
    """Build and save a tiny CogVideoX ``task`` (i2v | t2v) pipeline into ``out_dir`` (idempotent)."""
    if task not in ("i2v", "t2v"):
        raise ValueError(f"task must be i2v or t2v, got {task!r}")
    params = _params(task, seed)

    def build(tmp: Path) -> None:
        _build(task, seed).save_pretrained(tmp, safe_serialization=True)
        (tmp / TINY_MARKER).write_text(json.dumps(params, indent=2, sort_keys=True))

    def complete(out: Path) -> bool:
        from pipeline.generators.cogvideox.engine import CogVideoXGenerator

        try:
            saved = json.loads((out / TINY_MARKER).read_text())
        except (OSError, ValueError):
            return False
        return saved == params and not CogVideoXGenerator.missing_checkpoint_files(out)

    return build_folder(out_dir, build, complete)
