"""Loading the frozen V-JEPA 2 world model (Hugging Face format) offline, plus a tiny test model.

Only local folders are accepted: a path that does not exist would otherwise be read by
transformers as a hub repo id and trigger a download attempt.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

# Set before transformers / huggingface_hub are imported, which read these once at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")

_CACHE: dict[tuple[str, str, torch.dtype, str | None], torch.nn.Module] = {}


class RewardModelError(RuntimeError):
    """The reward model folder is missing, incomplete or not a V-JEPA 2 model."""


def check_model_folder(path: Path) -> None:
    looked_for = f"{path}/{CONFIG_FILE} and one of {', '.join(f'{path}/{w}' for w in WEIGHT_FILES)}"
    if not path.is_dir():
        raise RewardModelError(
            f"V-JEPA 2 model folder not found: {path} (looked for {looked_for}). "
            "Pass a local Hugging Face format folder (config.json + safetensors); nothing is downloaded."
        )
    missing = []
    if not (path / CONFIG_FILE).is_file():
        missing.append(CONFIG_FILE)
    if not any((path / w).is_file() for w in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        present = sorted(p.name for p in path.iterdir())[:20]
        raise RewardModelError(
            f"V-JEPA 2 model folder {path} is incomplete: missing {', '.join(missing)} "
            f"(looked for {looked_for}; folder holds {present})"
        )
    try:
        model_type = json.loads((path / CONFIG_FILE).read_text()).get("model_type")
    except (OSError, json.JSONDecodeError) as exc:
        raise RewardModelError(f"cannot read {path / CONFIG_FILE}: {exc}") from exc
    if model_type != "vjepa2":
        raise RewardModelError(f"{path / CONFIG_FILE} has model_type={model_type!r}, expected 'vjepa2'")


def load_vjepa2(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    attn_implementation: str | None = None,
) -> torch.nn.Module:
    """Load a frozen ``VJEPA2Model`` (eval mode, no grad on weights), cached per process.

    The cache matters because a scorer is built per stage/candidate while the ViT-g weights take
    several GB; the same (path, device, dtype) always returns the same module object.
    """
    folder = Path(path).expanduser().resolve()
    key = (str(folder), str(torch.device(device)), dtype, attn_implementation)
    if key in _CACHE:
        return _CACHE[key]
    check_model_folder(folder)
    from transformers import VJEPA2Model

    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        model = VJEPA2Model.from_pretrained(str(folder), local_files_only=True, dtype=dtype, **kwargs)
    except (OSError, ValueError) as exc:
        raise RewardModelError(f"cannot load V-JEPA 2 model from {folder}: {exc}") from exc
    model = model.to(device).eval().requires_grad_(False)
    _CACHE[key] = model
    return model


def clear_model_cache() -> None:
    """Drop cached models (tests, or freeing GPU memory between pipeline stages)."""
    _CACHE.clear()
