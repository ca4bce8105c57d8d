"""What an image-encoder folder must hold to load with transformers' ``AutoModel`` (checked before
any work, so without torch)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.weight_files import truncated_weights

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def encoder_folder_problems(path: str | os.PathLike) -> list[str]:
    """What keeps ``path`` from being a loadable transformers encoder folder (no weights read)."""
    root = Path(path)
    if not root.is_dir():
        return [
            f"{root} is not a folder (download an encoder, e.g. `huggingface-cli download "
            f"facebook/dinov2-large --local-dir {root}`)"
        ]
    out = []
    cfg = root / "config.json"
    try:
        config = json.loads(cfg.read_text())
    except (OSError, ValueError) as exc:
        return [f"{cfg}: cannot read the encoder config ({exc})"]
    if "model_type" not in config:
        out.append(f"{cfg}: no model_type, not a transformers model folder")
    weights = [root / f for f in WEIGHT_FILES if (root / f).is_file()]
    if not weights:
        out.append(f"{root}: no weights ({' or '.join(WEIGHT_FILES)})")
    for w in weights:
        why = truncated_weights(w)
        if why:
            out.append(f"{w}: truncated ({why})")
    return out
