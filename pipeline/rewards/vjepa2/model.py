"""The frozen V-JEPA 2 world model (encoder + predictor, our own modules) and its cached loader.

One encoder serves both branches, as the official hub loader does: by default the EMA
``target_encoder`` weights (``reward.weights=encoder`` picks the online encoder instead, which is
what WMReward's local-file loader used). The cache matters because a scorer is built per stage
while ViT-g weights take several GB: the same (source, weights, device, dtype) is loaded once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.model_cache import resident
from pipeline.rewards.vjepa2.checkpoints import (
    RewardModelError,
    load_strict,
    read_hf,
    read_official,
    resolve_checkpoint,
)
from pipeline.rewards.vjepa2.predictor import DEFAULT_MASK_INDEX, Predictor
from pipeline.rewards.vjepa2.spec import VARIANT_CHOICES
from pipeline.rewards.vjepa2.variants import VARIANTS, Arch, ArchError, load_arch
from pipeline.rewards.vjepa2.vit import VisionTransformer

__all__ = ["WorldModel", "load_world_model", "RewardModelError", "resolve_precision"]


@dataclass(frozen=True)
class Source:
    """Where the weights came from, recorded in every score's settings."""

    variant: str
    path: str = ""
    weights: str = ""


class WorldModel(nn.Module):
    def __init__(self, arch: Arch, source: Source | None = None) -> None:
        super().__init__()
        self.arch = arch
        self.source = source or Source(arch.name)
        self.encoder = VisionTransformer(arch.encoder)
        self.predictor = Predictor(arch.predictor)
        self.mask_index = DEFAULT_MASK_INDEX

    @property
    def img_size(self) -> int:
        return self.arch.encoder.img_size

    @property
    def patch_size(self) -> int:
        return self.arch.encoder.patch_size

    @property
    def tubelet_size(self) -> int:
        return self.arch.encoder.tubelet_size

    def encode(self, frames: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, 3, S, S) preprocessed frames -> (B, N, D) after the encoder's final norm."""
        return self.encoder(frames.transpose(1, 2), keep)

    def predict(self, ctx: torch.Tensor, ctx_ids: torch.Tensor, tgt_ids: torch.Tensor) -> torch.Tensor:
        return self.predictor(ctx, ctx_ids, tgt_ids, mask_index=self.mask_index)


def build_model(arch: Arch, encoder_sd: dict, predictor_sd: dict, source: Source) -> WorldModel:
    with torch.device("meta"):  # no random init of weights about to be overwritten (ViT-g: 1 B params)
        model = WorldModel(arch, source)
    load_strict(model.encoder, encoder_sd, "encoder", source.path)
    load_strict(model.predictor, predictor_sd, "predictor", source.path)
    return model


def resolve_precision(name: str, device: str | torch.device) -> tuple[torch.dtype, bool]:
    """Config dtype -> (weight dtype, allow TF32 matmuls).

    ``auto``: bfloat16 on CUDA, float32 elsewhere. ``tf32``: float32 weights with TF32 matmuls on
    CUDA (plain float32 on CPU). ``float32`` is strict IEEE float32 everywhere.
    """
    cuda = torch.device(device).type == "cuda"
    table = {
        "float32": (torch.float32, False),
        "tf32": (torch.float32, cuda),
        "bfloat16": (torch.bfloat16, False),
        "float16": (torch.float16, False),
        "auto": (torch.bfloat16, False) if cuda else (torch.float32, False),
    }
    if name not in table:
        raise ValueError(f"reward.dtype={name!r} is not one of {list(table)}")
    return table[name]


def load_world_model(
    variant: str = "hf",
    checkpoint: str | os.PathLike | None = None,
    arch: str | os.PathLike | None = None,
    weights: str = "target_encoder",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> WorldModel:
    """Load a frozen world model (eval mode, no grad on weights), cached per process.

    variant: tiny | vitl | vith | vitg | vitg384 (official .pt), custom (official .pt + ``arch``
    JSON) or hf (Hugging Face format folder). ``checkpoint``: the file, or a folder holding the
    variant's official file name; unset -> ``$VJEPA_CHECKPOINT_DIR``.
    """
    if variant not in VARIANT_CHOICES:
        raise RewardModelError(f"reward.variant={variant!r} is not one of {list(VARIANT_CHOICES)}")
    if variant == "custom" and not arch:
        raise RewardModelError("reward.variant=custom needs reward.arch=ARCH.json")
    if variant != "custom" and arch:
        raise RewardModelError(f"reward.arch is only read with reward.variant=custom (got variant={variant})")
    path = resolve_checkpoint(variant, checkpoint)
    arch_path = str(Path(arch).expanduser().resolve()) if arch else None
    key = ("vjepa2", variant, str(path), arch_path, weights, str(torch.device(device)), dtype)
    return resident(key, lambda: _load(variant, path, arch_path, weights, device, dtype))


def _load(variant: str, path: Path, arch_path: str | None, weights: str, device, dtype) -> WorldModel:
    try:
        if variant == "hf":
            spec, enc_sd, pred_sd = read_hf(path)
            source = Source("hf", str(path), "hf")
        else:
            spec = load_arch(arch_path) if variant == "custom" and arch_path else VARIANTS[variant]
            enc_sd, pred_sd = read_official(path, weights)
            source = Source(variant, str(path), weights)
        model = build_model(spec, enc_sd, pred_sd, source)
    except ArchError as exc:
        raise RewardModelError(str(exc)) from None
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


def check_reward_config(r) -> None:
    """Cheap checks of a RewardConfig before any work (no weights are read).

    Raises ConfigError naming the key for a bad setting, RewardModelError when the checkpoint
    cannot be found.
    """
    from pipeline.errors import ConfigError
    from pipeline.rewards.vjepa2.checkpoints import WEIGHT_KEYS, read_hf_arch
    from pipeline.rewards.vjepa2.windows import token_split
    from pipeline.weight_files import truncated_in, truncated_weights

    if r.variant not in VARIANT_CHOICES:
        raise ConfigError(f"reward.variant={r.variant!r} is not one of {list(VARIANT_CHOICES)}")
    if r.weights not in WEIGHT_KEYS:
        raise ConfigError(f"reward.weights={r.weights!r} is not one of {list(WEIGHT_KEYS)}")
    if (r.variant == "custom") != bool(r.arch):
        raise ConfigError(
            "reward.arch=ARCH.json is required with reward.variant=custom and read only then "
            f"(variant={r.variant}, arch={r.arch})"
        )
    try:
        resolve_precision(r.dtype, "cpu")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    arch = None if r.variant == "hf" else load_arch(r.arch) if r.variant == "custom" else VARIANTS[r.variant]
    path = resolve_checkpoint(r.variant, r.checkpoint)
    cut = (
        truncated_in(path)
        if path.is_dir()
        else [f"{path} (truncated: {why})" for why in [truncated_weights(path)] if why]
    )
    if cut:
        raise RewardModelError(f"incomplete V-JEPA 2 checkpoint: {'; '.join(cut)}")
    if arch is None:
        arch = read_hf_arch(path)
    try:
        token_split(r.window_size, r.context_frames, arch.encoder.tubelet_size, arch.encoder.grid)
    except ValueError as exc:
        raise ConfigError(f"reward.window_size / reward.context_frames: {exc}") from None
