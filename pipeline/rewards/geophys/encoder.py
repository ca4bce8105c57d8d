"""The frozen image encoder GeoPhys embeds frames with: any transformers vision backbone folder
(DINOv2 ViT-L/14 by default) loaded with ``AutoModel.from_pretrained`` from local files, one vector
per frame from a chosen layer and pooling.

Frames go through the reward's one preprocessing path (``vjepa2/preprocess.py``: squash to a
square, /255, ImageNet mean and std, which are DINOv2's too). Squashing rather than DINOv2's
resize-and-centre-crop keeps the whole frame: Physics-IQ clips are 16:9 and objects leave
through the sides a crop would cut.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import ConfigError
from pipeline.model_cache import resident
from pipeline.rewards.vjepa2.preprocess import preprocess_clip

from .folder import encoder_folder_problems


@dataclass
class FrameEncoder:
    """One embedding per frame: ``model`` run on (N, 3, S, S) normalised frames."""

    model: Any
    path: str
    layer: int | None
    pooling: str
    image_size: int
    prefix_tokens: int  # class token + register tokens before the patch tokens

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def prepare(self, frames: Any) -> torch.Tensor:
        """uint8 (T, H, W, 3) frames (numpy or torch) -> (T, 3, S, S) float32 encoder input."""
        return preprocess_clip(frames, self.image_size)

    @torch.no_grad()
    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) preprocessed frames -> (N, D) float32 embeddings."""
        out = self.model(pixel_values=pixels.to(self.device, self.dtype), output_hidden_states=self.layer is not None)
        if self.layer is None:
            tokens = out.last_hidden_state
        else:
            tokens = out.hidden_states[self.layer]
        vec = tokens[:, 0] if self.pooling == "cls" else tokens[:, self.prefix_tokens :].mean(dim=1)
        return vec.float()


def load_frame_encoder(
    path: str | os.PathLike, layer: int | None, pooling: str, image_size: int, device: str, dtype: torch.dtype
) -> FrameEncoder:
    """The encoder of folder ``path`` (loaded once per process and device and dtype)."""
    resolved = str(Path(path).resolve())
    bad = encoder_folder_problems(resolved)
    if bad:
        raise ConfigError("reward.checkpoint: " + "; ".join(bad))
    model = resident(("geophys-encoder", resolved, str(device), str(dtype)), lambda: _load(resolved, device, dtype))
    config = model.config
    depth = int(getattr(config, "num_hidden_layers", 0))
    if layer is not None and not -(depth + 1) <= layer <= depth:
        raise ConfigError(f"reward.layer={layer}: the encoder has hidden states 0..{depth} (or -1..-{depth + 1})")
    patch = getattr(config, "patch_size", None)
    if isinstance(patch, int) and image_size % patch:
        raise ConfigError(f"reward.image_size={image_size}: not a multiple of the encoder's patch size {patch}")
    prefix = 1 + int(getattr(config, "num_register_tokens", 0) or 0)
    return FrameEncoder(model, resolved, layer, pooling, image_size, prefix)


def _load(path: str, device: str, dtype: torch.dtype) -> Any:
    from transformers import AutoModel

    try:
        model = AutoModel.from_pretrained(path, local_files_only=True, dtype=dtype)
    except Exception as exc:  # noqa: BLE001 - transformers raises many kinds; name the folder
        raise ConfigError(f"reward.checkpoint: cannot load an image encoder from {path}: {exc}") from exc
    return model.to(device).eval().requires_grad_(False)
