"""A tiny randomly initialised DINOv2 in the transformers folder format (config.json +
model.safetensors), the same format ``facebook/dinov2-large`` downloads as, so the GeoPhys verifier
loads it through ``AutoModel.from_pretrained`` exactly as the real encoder. Idempotent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipeline.files import TINY_MARKER, build_folder

TINY_VERSION = 1
CONFIG: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "mlp_ratio": 2,
    "patch_size": 8,
    "image_size": 32,
}


def _params(seed: int) -> dict:
    return {"tiny_version": TINY_VERSION, "seed": int(seed), "config": CONFIG}


def _is_complete(out: Path, params: dict) -> bool:
    try:
        if json.loads((out / TINY_MARKER).read_text()) != params:
            return False
    except (OSError, ValueError):
        return False
    return (out / "config.json").is_file() and (out / "model.safetensors").is_file()


def make_tiny_dinov2(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    params = _params(seed)

    def build(tmp: Path) -> None:
        import torch
        from transformers import Dinov2Config, Dinov2Model

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = Dinov2Model(Dinov2Config(**CONFIG)).eval()
            for name, p in model.named_parameters():
                # larger than an init's weights, so frames that differ embed apart
                if not name.endswith("bias") and "norm" not in name:
                    p.data = 0.2 * torch.randn_like(p)
        model.save_pretrained(tmp, safe_serialization=True)
        (tmp / TINY_MARKER).write_text(json.dumps(params, indent=2, sort_keys=True))

    return build_folder(out_dir, build, lambda out: _is_complete(out, params))
