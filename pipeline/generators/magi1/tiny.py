"""A tiny randomly initialised MAGI-1 model set in the official folder layouts, for the demo and tests::

    <out>/dit/inference_weight/            base DiT (preset "tiny", official keys, 2 shards + index)
    <out>/dit/inference_weight.distill/    distill DiT (same architecture, other seed)
    <out>/dit/magi_config.json             official MagiConfig JSON of the tiny base model
    <out>/vae/                             ViTVAE folder (config.json + diffusion_pytorch_model.safetensors)
    <out>/t5/t5-v1_1-xxl/                  tiny T5 encoder + tokenizer (HF layout, two .bin shards)
    <out>/special_tokens.npz               official special-token arrays (32-dim)
    <out>/tiny_params.json                 what was built (idempotence)

``make_tiny_magi1(out)`` is idempotent: a complete folder with matching ``tiny_params.json`` is
recognised without importing torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.files import TINY_MARKER, build_folder

TINY_VERSION = 1
PARAMS_FILE = TINY_MARKER
_REQUIRED = (
    "dit/inference_weight/model.safetensors.index.json",
    "dit/inference_weight.distill/model.safetensors.index.json",
    "dit/magi_config.json",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "t5/t5-v1_1-xxl/config.json",
    "t5/t5-v1_1-xxl/pytorch_model.bin.index.json",
    "special_tokens.npz",
)


def _params(seed: int) -> dict:
    return {"tiny_version": TINY_VERSION, "seed": int(seed), "variant": "tiny"}


def is_complete(out: str | os.PathLike, seed: int = 0) -> bool:
    out = Path(out)
    try:
        if json.loads((out / PARAMS_FILE).read_text()) != _params(seed):
            return False
    except (OSError, ValueError):
        return False
    return all((out / f).is_file() for f in _REQUIRED)


def make_tiny_magi1(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Build (or reuse) the tiny MAGI-1 folder set under ``out_dir``; returns it."""
    out = Path(out_dir)
    import torch

    from .checkpoint import make_tiny_checkpoint, write_official_checkpoint
    from .config import preset
    from .dit import MagiDiT
    from .text import write_tiny_special_tokens, write_tiny_t5
    from .vae import write_tiny_vae

    def build(tmp: Path) -> None:
        with torch.random.fork_rng(devices=[]):
            write_official_checkpoint(
                MagiDiT(preset("tiny_distill").model_config).init_random_(seed + 1), tmp / "dit", distill=True
            )
            make_tiny_checkpoint(tmp / "dit", "tiny", seed=seed)
            write_tiny_vae(tmp / "vae", seed=seed)
            write_tiny_t5(tmp / "t5", seed=seed)
        write_tiny_special_tokens(
            tmp / "special_tokens.npz", dim=preset("tiny").model_config.caption_channels, seed=seed
        )
        # the JSON should point at the final folder, not the temporary one
        cfg_path = tmp / "dit" / "magi_config.json"
        data = json.loads(cfg_path.read_text())
        data["runtime_config"].update(
            load=str(out / "dit"), vae_pretrained=str(out / "vae"), t5_pretrained=str(out / "t5")
        )
        cfg_path.write_text(json.dumps(data, indent=4))
        (tmp / PARAMS_FILE).write_text(json.dumps(_params(seed), indent=2))

    return build_folder(out, build, lambda folder: is_complete(folder, seed))
