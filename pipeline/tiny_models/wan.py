"""Tiny, randomly initialised Wan image-to-video checkpoint for tests and demos.

`make_tiny_wan_i2v(out_dir)` builds a diffusers ``WanImageToVideoPipeline`` whose
components are all tiny (a few hundred KB of weights), and saves it with
``save_pretrained`` so that the exact loading path used for real Wan 2.1 / 2.2
I2V diffusers checkpoints (``WanImageToVideoPipeline.from_pretrained(path)``)
is exercised.  Nothing is downloaded: the tokenizer is trained locally.

Three layouts are supported:

* default (``with_image_encoder=False``): Wan 2.2-A14B-I2V style -- the image
  condition enters only through the VAE-encoded first frame concatenated to
  the noisy latents (transformer ``image_dim=None``, no CLIP components);
* ``two_experts=True``: Wan 2.2-A14B-I2V's two transformers, a high-noise ``transformer`` and a
  low-noise ``transformer_2`` that the pipeline switches between at ``boundary_ratio`` (0.9, as
  the A14B folders record) of the training timesteps;
* ``with_image_encoder=True``: Wan 2.1-I2V style -- additionally a tiny
  ``CLIPVisionModel`` + ``CLIPImageProcessor`` whose penultimate hidden states
  feed the transformer's image cross-attention (``image_dim`` set).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipeline.files import TINY_MARKER, build_folder
from pipeline.tiny_models.tokenizer import build_local_tokenizer

# Fixed, hashable description of the tiny model.  Bump TINY_VERSION whenever the
# construction code changes so that stale folders get rebuilt.
TINY_VERSION = 1

TINY_CONFIG: dict[str, Any] = {
    "vae": {
        "base_dim": 8,
        "z_dim": 4,
        "dim_mult": [1, 1, 1, 1],
        "num_res_blocks": 1,
        "temperal_downsample": [False, True, True],
    },
    "transformer": {
        "patch_size": [1, 2, 2],
        "num_attention_heads": 2,
        "attention_head_dim": 12,
        "ffn_dim": 32,
        "num_layers": 1,
        "freq_dim": 32,
        "rope_max_seq_len": 32,
    },
    "text_encoder": {
        "d_model": 32,
        "d_kv": 16,
        "d_ff": 64,
        "num_layers": 1,
        "num_heads": 2,
        "relative_attention_num_buckets": 8,
        "relative_attention_max_distance": 16,
    },
    "tokenizer": {"vocab_size": 400},
    "image_encoder": {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
        "projection_dim": 16,
    },
    "scheduler": {"shift": 3.0},
}


# Small corpus the local BPE tokenizer is trained on.  Any text can still be
# tokenized because the byte-level alphabet is always part of the vocabulary.


BOUNDARY_RATIO = 0.9  # Wan2.2-I2V-A14B-Diffusers/model_index.json


def _expected_params(seed: int, with_image_encoder: bool, two_experts: bool = False) -> dict[str, Any]:
    params = {
        "tiny_version": TINY_VERSION,
        "seed": int(seed),
        "with_image_encoder": bool(with_image_encoder),
        "config": TINY_CONFIG,
    }
    if two_experts:  # absent otherwise: folders made before the option stay complete
        params["two_experts"] = True
    return params


def _is_complete(out_dir: Path, params: dict[str, Any]) -> bool:
    try:
        saved = json.loads((out_dir / TINY_MARKER).read_text())
    except (OSError, ValueError):
        return False
    if saved != json.loads(json.dumps(params)):
        return False
    from pipeline.generators.wan.engine import missing_checkpoint_files

    return not missing_checkpoint_files(out_dir)


def _build_pipeline(seed: int, with_image_encoder: bool, two_experts: bool = False):
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    cfg = TINY_CONFIG
    tokenizer = build_local_tokenizer(cfg["tokenizer"]["vocab_size"])

    torch.manual_seed(seed)
    vcfg = cfg["vae"]
    z_dim = vcfg["z_dim"]
    vae = AutoencoderKLWan(
        **vcfg,
        # identity normalisation for the random VAE (lists must have z_dim entries)
        latents_mean=[0.0] * z_dim,
        latents_std=[1.0] * z_dim,
    )

    tcfg = cfg["text_encoder"]
    text_config = UMT5Config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
        **tcfg,
    )
    torch.manual_seed(seed + 1)
    text_encoder = UMT5EncoderModel(text_config).eval()

    image_encoder = image_processor = None
    image_dim = None
    if with_image_encoder:
        from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

        icfg = cfg["image_encoder"]
        torch.manual_seed(seed + 2)
        image_encoder = CLIPVisionModel(CLIPVisionConfig(**icfg)).eval()
        image_processor = CLIPImageProcessor(
            crop_size={"height": icfg["image_size"], "width": icfg["image_size"]},
            size={"shortest_edge": icfg["image_size"]},
        )
        image_dim = icfg["hidden_size"]

    xcfg = dict(cfg["transformer"])
    xcfg["patch_size"] = tuple(xcfg["patch_size"])

    def transformer(seed_offset: int):
        torch.manual_seed(seed + seed_offset)
        return WanTransformer3DModel(
            in_channels=2 * z_dim + 4,  # noisy latents + 4 mask channels + condition latents
            out_channels=z_dim,
            text_dim=tcfg["d_model"],
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            image_dim=image_dim,
            added_kv_proj_dim=(xcfg["num_attention_heads"] * xcfg["attention_head_dim"]) if image_dim else None,
            **xcfg,
        ).eval()  # type: ignore[attr-defined]  # a torch Module; diffusers' annotations hide it

    scheduler = FlowMatchEulerDiscreteScheduler(shift=cfg["scheduler"]["shift"])
    experts: dict[str, Any] = {"transformer": transformer(3)}
    if two_experts:
        experts.update(transformer_2=transformer(4), boundary_ratio=BOUNDARY_RATIO)

    return WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae.eval(),  # type: ignore[attr-defined]
        scheduler=scheduler,
        image_processor=image_processor,
        image_encoder=image_encoder,
        **experts,
    )


def make_tiny_wan_i2v(
    out_dir: str | os.PathLike, seed: int = 0, with_image_encoder: bool = False, two_experts: bool = False
) -> Path:
    """Build and save a tiny random ``WanImageToVideoPipeline`` into ``out_dir``.

    Idempotent: if ``out_dir`` already holds a complete folder built with the same
    parameters (recorded in ``tiny_params.json``) nothing is rebuilt.  The folder
    is written to a temporary sibling and renamed into place, so a crash never
    leaves a half-written folder that looks complete.  Returns ``out_dir``.
    """
    params = _expected_params(seed, with_image_encoder, two_experts)

    def build(tmp: Path) -> None:
        _build_pipeline(seed, with_image_encoder, two_experts).save_pretrained(tmp, safe_serialization=True)
        (tmp / TINY_MARKER).write_text(json.dumps(params, indent=2, sort_keys=True))

    return build_folder(out_dir, build, lambda out: _is_complete(out, params))


def bench_tiny(
    path: str | os.PathLike,
    batch_size: int = 1,
    num_frames: int = 41,
    steps: int = 4,
    size: int = 64,
    repeats: int = 3,
    guidance_scale: float = 5.0,
) -> float:
    """Median seconds per candidate of the tiny model through ``WanI2VGenerator``."""
    import time

    import numpy as np

    from pipeline.generators.base import GenerationRequest
    from pipeline.generators.wan.engine import WanI2VGenerator

    g = WanI2VGenerator(
        path,
        width=size,
        height=size,
        num_frames=num_frames,
        fps=16,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        batch_size=batch_size,
    )
    img = np.random.RandomState(0).randint(0, 256, (size, size, 3), dtype=np.uint8)
    reqs = [GenerationRequest("a red ball rolls", img, k) for k in range(batch_size)]
    g.generate(reqs)  # warm-up (prompt encoding, allocator)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        g.generate(reqs)
        times.append((time.perf_counter() - t0) / batch_size)
    return float(sorted(times)[len(times) // 2])


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Build a tiny random Wan I2V diffusers checkpoint.")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--with-image-encoder", action="store_true")
    ap.add_argument("--bench", action="store_true", help="time 64x64, 41-frame, 4-step candidates (batch 1 and 2)")
    a = ap.parse_args(argv)
    path = make_tiny_wan_i2v(a.out_dir, seed=a.seed, with_image_encoder=a.with_image_encoder)
    print(path)
    if a.bench:
        for bs in (1, 2):
            print(f"batch {bs}: {bench_tiny(path, batch_size=bs):.3f} s/candidate")


if __name__ == "__main__":
    main()
