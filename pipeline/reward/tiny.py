"""A tiny randomly initialised V-JEPA 2 in Hugging Face format, so tests and the demo run the real
loading path. Its scores are meaningless; it exercises shapes, indexing and numerics.

Idempotent and cheap to re-check: a matching ``tiny_params.json`` in a complete folder means
nothing is rebuilt (and neither torch nor transformers is imported).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

TINY_VERSION = 1
PARAMS_FILE = "tiny_params.json"


def _params(seed: int, crop_size: int) -> dict:
    return {"tiny_version": TINY_VERSION, "seed": int(seed), "crop_size": int(crop_size)}


def _is_complete(out: Path, params: dict) -> bool:
    try:
        if json.loads((out / PARAMS_FILE).read_text()) != params:
            return False
    except (OSError, ValueError):
        return False
    return (out / "config.json").is_file() and (out / "model.safetensors").is_file()


def make_tiny_vjepa2(out_dir: str | os.PathLike, seed: int = 0, crop_size: int = 64) -> Path:
    out = Path(out_dir)
    params = _params(seed, crop_size)
    if _is_complete(out, params):
        return out
    import torch
    from transformers import VJEPA2Config, VJEPA2Model

    config = VJEPA2Config(
        hidden_size=64, num_attention_heads=4, num_hidden_layers=2,
        pred_hidden_size=64, pred_num_attention_heads=4, pred_num_hidden_layers=2,
        crop_size=crop_size, patch_size=16, tubelet_size=2, frames_per_clip=16, num_pooler_layers=1,
        # Real checkpoints have trained (non-zero) mask tokens; zeros would hide a wrong mask token.
        pred_zero_init_mask_tokens=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VJEPA2Model(config)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.save_pretrained(str(tmp))
        (tmp / PARAMS_FILE).write_text(json.dumps(params, indent=2))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
