"""Hyper-parameters of the V-JEPA 2 world models: the released variants, the tiny test model, and
custom architectures from an ARCH.json.

Field names are the official constructors' argument names (``vision_transformer.VisionTransformer``
and ``predictor.VisionTransformerPredictor`` in facebookresearch/vjepa2), so an ARCH.json can be
written by reading an upstream config. Values are those of the official torch.hub builders.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError

# Official file names in $VJEPA_CHECKPOINT_DIR / the reward.checkpoint folder.
CHECKPOINT_FILES = {
    "vitl": "vitl.pt",
    "vith": "vith.pt",
    "vitg": "vitg.pt",
    "vitg384": "vitg-384.pt",
    "tiny": "tiny.pt",
}


class ArchError(PipelineError, ValueError):
    """An architecture description that is invalid or that this implementation cannot reproduce."""


@dataclass(frozen=True)
class EncoderArch:
    embed_dim: int
    depth: int
    num_heads: int
    img_size: int = 256
    patch_size: int = 16
    num_frames: int = 64
    tubelet_size: int = 2
    in_chans: int = 3
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    use_rope: bool = True
    use_sdpa: bool = True  # attention kernel choice only: same numbers either way
    use_silu: bool = False  # True = SwiGLU MLP (fc1, fc2, fc3)
    wide_silu: bool = True
    uniform_power: bool = False  # only affects sincos position tables, unused with RoPE

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size


@dataclass(frozen=True)
class PredictorArch:
    embed_dim: int  # the encoder width it reads and writes
    predictor_embed_dim: int = 384
    depth: int = 12
    num_heads: int = 12
    img_size: int = 256
    patch_size: int = 16
    num_frames: int = 64
    tubelet_size: int = 2
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    use_rope: bool = True
    use_sdpa: bool = True
    use_silu: bool = False
    wide_silu: bool = True
    uniform_power: bool = False
    use_mask_tokens: bool = True
    num_mask_tokens: int = 10

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.num_frames // self.tubelet_size * self.grid**2


@dataclass(frozen=True)
class Arch:
    name: str
    encoder: EncoderArch
    predictor: PredictorArch = field(default=None)  # type: ignore[assignment]


def _official(name: str, embed_dim: int, depth: int, num_heads: int, mlp_ratio: float, img_size: int = 256) -> Arch:
    enc = EncoderArch(embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, img_size=img_size)
    pred = PredictorArch(embed_dim=embed_dim, img_size=img_size)
    return Arch(name, enc, pred)


def tiny_arch(img_size: int = 64) -> Arch:
    """Random test model: 4 heads of 16 channels, so RoPE uses 3×4 channels and leaves 4 unrotated."""
    enc = EncoderArch(embed_dim=64, depth=2, num_heads=4, img_size=img_size, num_frames=16)
    pred = PredictorArch(embed_dim=64, predictor_embed_dim=48, depth=2, num_heads=4, img_size=img_size, num_frames=16)
    return Arch("tiny", enc, pred)


# Official hub builders: vit_large / vit_huge / vit_giant_xformers, 64 frames, RoPE, GELU MLP,
# predictor 384 wide, 12 deep, 12 heads, 10 mask tokens.
VARIANTS: dict[str, Arch] = {
    "vitl": _official("vitl", 1024, 24, 16, 4.0),
    "vith": _official("vith", 1280, 32, 16, 4.0),
    "vitg": _official("vitg", 1408, 40, 22, 48 / 11),
    "vitg384": _official("vitg384", 1408, 40, 22, 48 / 11, img_size=384),
    "tiny": tiny_arch(),
}

# Upstream arguments that only matter for training or that we reproduce only at their defaults.
_IGNORED = {
    "drop_rate",
    "attn_drop_rate",
    "drop_path_rate",
    "init_std",
    "zero_init_mask_tokens",
    "use_activation_checkpointing",
    "norm_layer",
}
_REQUIRED_DEFAULTS = {
    "qk_scale": None,
    "out_layers": None,
    "return_all_tokens": False,
    "chop_last_n_tokens": 0,
    "handle_nonsquare_inputs": True,
}


def _build(cls: type, section: dict[str, Any], where: str, **fixed: Any) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = dict(fixed)
    for key, value in section.items():
        if key in _IGNORED:
            continue
        if key in _REQUIRED_DEFAULTS:
            if value != _REQUIRED_DEFAULTS[key]:
                raise ArchError(f"{where}.{key}={value!r} is not supported (only {_REQUIRED_DEFAULTS[key]!r})")
            continue
        if key not in known or key in fixed:
            raise ArchError(f"{where}: unknown key {key!r}; known: {sorted(known - set(fixed))}")
        if key == "img_size" and isinstance(value, (list, tuple)):
            if len(value) != 2 or value[0] != value[1]:
                raise ArchError(f"{where}.img_size={value}: only square inputs are supported")
            value = value[0]
        kwargs[key] = value
    missing = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING and f.name not in kwargs]
    if missing:
        raise ArchError(f"{where}: missing required key(s) {missing}")
    return cls(**kwargs)


def validate(arch: Arch) -> Arch:
    e, p = arch.encoder, arch.predictor
    parts: tuple[tuple[str, EncoderArch | PredictorArch, int], ...] = (
        ("encoder", e, e.embed_dim),
        ("predictor", p, p.predictor_embed_dim),
    )
    for where, part, width in parts:
        if not part.use_rope:
            raise ArchError(f"{where}.use_rope=false (sincos position tables) is not supported: V-JEPA 2 uses RoPE")
        if width % part.num_heads:
            raise ArchError(f"{where}: width {width} is not a multiple of num_heads {part.num_heads}")
        if part.img_size % part.patch_size:
            raise ArchError(f"{where}: img_size {part.img_size} is not a multiple of patch_size {part.patch_size}")
    if not p.use_mask_tokens or p.num_mask_tokens < 1:
        raise ArchError("predictor.use_mask_tokens must be true with num_mask_tokens >= 1 (upstream needs them)")
    if p.embed_dim != e.embed_dim:
        raise ArchError(f"predictor.embed_dim {p.embed_dim} differs from encoder.embed_dim {e.embed_dim}")
    if (p.img_size, p.patch_size, p.tubelet_size) != (e.img_size, e.patch_size, e.tubelet_size):
        raise ArchError("predictor and encoder disagree on img_size / patch_size / tubelet_size")
    return arch


def arch_from_dict(data: dict[str, Any], name: str = "custom") -> Arch:
    if (
        not isinstance(data, dict)
        or set(data) - {"encoder", "predictor"}
        or "encoder" not in data
        or "predictor" not in data
    ):
        raise ArchError("an arch description needs exactly an 'encoder' and a 'predictor' section")
    enc = _build(EncoderArch, data["encoder"], "encoder")
    shared = {k: getattr(enc, k) for k in ("img_size", "patch_size", "num_frames", "tubelet_size")}
    # The predictor inherits the encoder's geometry and width unless the file says otherwise.
    pred_section = {**shared, "embed_dim": enc.embed_dim, **data["predictor"]}
    pred = _build(PredictorArch, pred_section, "predictor")
    return validate(Arch(name, enc, pred))


def load_arch(path: str | os.PathLike) -> Arch:
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ArchError(f"cannot read reward.arch {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ArchError(f"reward.arch {path} is not valid JSON: {exc}") from exc
    try:
        return arch_from_dict(data, name="custom")
    except ArchError as exc:
        raise ArchError(f"reward.arch {path}: {exc}") from None
