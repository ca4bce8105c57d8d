"""MAGI-1 VAE: load the official ``ckpt/vae`` folder, encode frames, decode latents (tiled, as upstream).

Public API
----------
``MagiVAE.from_folder(path, device="cpu", dtype=torch.bfloat16, fps=24) -> MagiVAE``
    ``path`` holds ``config.json`` (``"_class_name": "ViTVAE"``, ``"model_type": "vit"``, ``ddconfig``)
    and the weights ``diffusion_pytorch_model.safetensors`` (also accepted: a sharded
    ``diffusion_pytorch_model.safetensors.index.json`` or ``diffusion_pytorch_model.bin``).  Tensors
    are read one at a time from the memory-mapped file and cast to ``device``/``dtype``; parameters
    have ``requires_grad=False`` (gradients still flow to the inputs).  A missing/partial/wrong folder
    raises :class:`~pipeline.generators.base.GeneratorLoadError` naming the problem.

``vae.encode(frames, tiled=True, scaled=True) -> latents`` float32 ``(B, 16, T', H/8, W/8)``
    ``frames``: uint8 ``(T, H, W, 3)`` / ``(B, T, H, W, 3)`` (numpy or torch), mapped to [-1, 1] by
    ``x / 127.5 - 1``; or a float tensor ``(B, 3, T, H, W)`` already in [-1, 1].  ``T' = T // 4``;
    a single frame gives one latent frame (repeated 4x, as upstream for i2v).  Posterior **mode**
    (mean), no sampling.  ``scaled=True`` (default) multiplies by ``scale_factor`` = 0.18215: these
    are the latents the DiT consumes.  Computed in the model dtype (the official runs bf16), no grad.

``vae.decode(latents, tiled=True, scaled=True) -> raw frames`` ``(B, 3, 4 T', 8 h, 8 w)``
    Raw decoder output in the model dtype, nominal range [-1, 1], **not** clamped.  ``scaled=True``
    means the input is DiT latents (divided by ``scale_factor`` here).  Differentiable: no
    ``no_grad`` inside; ``vae.gradient_checkpointing = True`` recomputes blocks in backward.
    ``tiled=True`` reproduces the official chunk post-processing: temporal tiles of ``fps // 2``
    frames (3 latent frames at 24 fps; a 1-latent-frame tile yields 1 frame), 256-px spatial tiles,
    overlap 0.25 (24-latent stride, 64-px linear blend) -- see :mod:`.vae_tiling`.

``vae.decode_to_uint8(latents, tiled=True, scaled=True) -> np.uint8 (B, T, H, W, 3)``
    (or ``(T, H, W, 3)`` for a 4-D latent) with the official conversion ``x * 127.5 + 127.5``,
    clamp to [0, 255], truncation to uint8 -- evaluated in the decoder's dtype like upstream.

Precision: with ``dtype=torch.bfloat16`` the weights/activations follow the official bf16 run
(affine LayerNorms in fp32 as under the official autocast); ``attention_dtype`` may force e.g. a
bf16 attention in an fp32 model, like the official ``qkv.bfloat16()``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.dtypes import torch_dtype
from pipeline.files import atomic_path, atomic_write_text
from pipeline.weight_files import truncated_in

from ..base import GeneratorLoadError
from ..weights import indexed_shards
from .vae_model import ViTVAEConfig, ViTVAEDecoder, ViTVAEEncoder, posterior_mode
from .vae_tiling import decode_plan, encode_plan, run_tiled

__all__ = [
    "MagiVAE",
    "SCALE_FACTOR",
    "VAE_CONFIG_NAME",
    "VAE_WEIGHTS_NAME",
    "TINY_VAE_DDCONFIG",
    "latents_to_uint8",
    "frames_to_model_input",
]

SCALE_FACTOR = 0.18215
VAE_CONFIG_NAME = "config.json"
VAE_WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
_WEIGHT_CANDIDATES = (
    VAE_WEIGHTS_NAME,
    "diffusion_pytorch_model.safetensors.index.json",
    "diffusion_pytorch_model.bin",
)

# Small random VAE: 8x spatial / 4x temporal / 16 channels like the real one; training grid 4x4x1
# latents (32 px, 4 frames); embed_dim must be a multiple of 8*8*4 = 256.
TINY_VAE_DDCONFIG: dict[str, Any] = {
    "video_size": 32,
    "video_length": 4,
    "patch_size": 8,
    "patch_length": 4,
    "in_chans": 3,
    "z_chans": 16,
    "double_z": True,
    "embed_dim": 256,
    "depth": 1,
    "num_heads": 4,
    "mlp_ratio": 0.5,
    "qkv_bias": True,
    "with_cls_token": True,
    "norm_code": False,
    "ln_in_attn": True,
    "conv_last_layer": True,
    "use_rope": False,
    "use_final_proj": False,
}


def frames_to_model_input(frames: Any) -> torch.Tensor:
    """uint8 (T,H,W,3)/(B,T,H,W,3) -> float32 (B,3,T,H,W) in [-1,1]; float (B,3,T,H,W) passes through."""
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"frames must be a numpy array or torch tensor, got {type(frames).__name__}")
    if frames.dtype == torch.uint8:
        if frames.ndim == 4:
            frames = frames.unsqueeze(0)
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"uint8 frames must be (T,H,W,3) or (B,T,H,W,3), got {tuple(frames.shape)}")
        return frames.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
    if not frames.is_floating_point():
        raise ValueError(f"frames must be uint8 or floating point, got {frames.dtype}")
    if frames.ndim != 5 or frames.shape[1] != 3:
        raise ValueError(f"float frames must be (B,3,T,H,W) in [-1,1], got {tuple(frames.shape)}")
    return frames


def latents_to_pixels(raw: torch.Tensor) -> torch.Tensor:
    """Decoded (B,3,T,H,W) frames -> (B,T,H,W,3) on the 0..255 scale: x*127.5+127.5, clamped
    (the official conversion before its truncation to uint8; differentiable)."""
    return (raw * 127.5 + 127.5).clamp(0, 255).permute(0, 2, 3, 4, 1)


def latents_to_uint8(raw: torch.Tensor) -> torch.Tensor:
    """Official conversion of decoded (B,3,T,H,W) frames: x*127.5+127.5, clamp, truncate -> (B,T,H,W,3)."""
    return latents_to_pixels(raw).to(torch.uint8)


class MagiVAE(nn.Module):
    """Official-layout MAGI-1 ViT VAE (state-dict keys ``encoder.*`` / ``decoder.*``). See module doc."""

    spatial_factor = 8
    temporal_factor = 4

    def __init__(
        self,
        config: ViTVAEConfig,
        *,
        fps: int = 24,
        scale_factor: float = SCALE_FACTOR,
        tile_sample_size: tuple[int, int] = (256, 256),
        spatial_overlap: float = 0.25,
        temporal_overlap: float = 0.0,
        attention_dtype: torch.dtype | None = None,
    ):
        super().__init__()
        config.validate()
        self.config = config
        self.encoder = ViTVAEEncoder(config)
        self.decoder = ViTVAEDecoder(config)
        self.spatial_factor = config.patch_size
        self.temporal_factor = config.patch_length
        self.fps = int(fps)
        self.scale_factor = float(scale_factor)
        self.tile_sample_size = (int(tile_sample_size[0]), int(tile_sample_size[1]))
        self.spatial_overlap = float(spatial_overlap)
        self.temporal_overlap = float(temporal_overlap)
        self.set_attention_dtype(attention_dtype)

    # ------------------------------------------------------------------ settings
    @property
    def tile_sample_length(self) -> int:
        """Video frames per temporal tile: ``fps // 2`` as in the official post-processing."""
        return self.fps // 2

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.proj_in.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.decoder.proj_in.weight.device

    @property
    def gradient_checkpointing(self) -> bool:
        return self.decoder.gradient_checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, value: bool) -> None:
        self.encoder.gradient_checkpointing = bool(value)
        self.decoder.gradient_checkpointing = bool(value)

    def set_attention_dtype(self, dtype: torch.dtype | None) -> None:
        self.encoder.set_attention_dtype(dtype)
        self.decoder.set_attention_dtype(dtype)

    def _plan_kwargs(self) -> dict[str, Any]:
        return dict(
            tile_sample_length=self.tile_sample_length,
            tile_sample_size=self.tile_sample_size,
            spatial_overlap=self.spatial_overlap,
            temporal_overlap=self.temporal_overlap,
            spatial_factor=self.spatial_factor,
            temporal_factor=self.temporal_factor,
        )

    # ------------------------------------------------------------------ single-tile calls
    def encode_tile(self, video: torch.Tensor) -> torch.Tensor:
        """Posterior mode of one (B,3,T,H,W) piece (unscaled); 1 frame -> repeated to patch_length."""
        single = video.shape[2] == 1 and self.temporal_factor > 1
        if single:
            video = video.expand(-1, -1, self.temporal_factor, -1, -1)
        z = posterior_mode(self.encoder(video))
        return z[:, :, :1] if single else z

    def decode_tile(self, z: torch.Tensor) -> torch.Tensor:
        """Raw decode of one (B,16,t,h,w) piece (unscaled latents); t == 1 keeps the first frame."""
        out = self.decoder(z)
        return out[:, :, :1] if z.shape[2] == 1 else out

    # ------------------------------------------------------------------ public API
    @torch.no_grad()
    def encode(self, frames: Any, tiled: bool = True, scaled: bool = True, spread=None) -> torch.Tensor:
        x = frames_to_model_input(frames).to(device=self.device, dtype=self.dtype)
        if tiled:
            plan = encode_plan(x.shape, **self._plan_kwargs())
            z = run_tiled(x, self.encode_tile, plan, neighbours="blended", spread=spread)
        else:
            z = self.encode_tile(x)
        if scaled:
            z = z * self.scale_factor
        return z.float()

    def decode(self, latents: torch.Tensor, tiled: bool = True, scaled: bool = True, spread=None) -> torch.Tensor:
        if latents.ndim != 5 or latents.shape[1] != self.config.z_chans:
            raise ValueError(f"latents must be (B,{self.config.z_chans},T,H,W), got {tuple(latents.shape)}")
        z = latents / self.scale_factor if scaled else latents
        z = z.to(device=self.device, dtype=self.dtype)
        if tiled:
            plan = decode_plan(z.shape, **self._plan_kwargs())
            return run_tiled(z, self.decode_tile, plan, neighbours="raw", spread=spread)
        return self.decode_tile(z)

    @torch.no_grad()
    def decode_to_uint8(self, latents: torch.Tensor, tiled: bool = True, scaled: bool = True) -> np.ndarray:
        single = latents.ndim == 4
        raw = self.decode(latents.unsqueeze(0) if single else latents, tiled=tiled, scaled=scaled)
        out = latents_to_uint8(raw).cpu().numpy()
        return out[0] if single else out

    def output_frames(self, latent_frames: int) -> int:
        """Number of video frames a tiled decode of ``latent_frames`` latent frames returns."""
        return tiled_output_frames(latent_frames, self.tile_sample_length, self.temporal_factor, self.temporal_overlap)

    # ------------------------------------------------------------------ loading / saving
    @classmethod
    def from_folder(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = torch.bfloat16,
        **kwargs: Any,
    ) -> MagiVAE:
        folder = Path(path)
        cfg = read_vae_config(folder)
        with torch.device("meta"):
            model = cls(cfg, **kwargs)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        state = _load_weights(folder, expected, device=torch.device(device), dtype=torch_dtype(dtype))
        model.load_state_dict(state, strict=True, assign=True)
        model.requires_grad_(False)
        return model.eval()

    def save_folder(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``diffusion_pytorch_model.safetensors`` in the official format."""
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        cfg = {
            "_class_name": "ViTVAE",
            "_diffusers_version": "0.29.2",
            "ddconfig": self.config.to_ddconfig(),
            "model_type": "vit",
        }
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        with atomic_path(folder / VAE_WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
        atomic_write_text(folder / VAE_CONFIG_NAME, json.dumps(cfg, indent=2))  # last: the folder is complete
        return folder


def tiled_output_frames(
    latent_frames: int, tile_sample_length: int, temporal_factor: int, temporal_overlap: float = 0.0
) -> int:
    """Video frames of a temporally tiled decode: a one-latent-frame tile gives one frame."""
    tile = tile_sample_length // temporal_factor
    n = 0
    for start in range(0, latent_frames, max(int(tile * (1 - temporal_overlap)), 1)):
        length = min(tile, latent_frames - start)
        n += 1 if length == 1 else length * temporal_factor
    return n


def read_vae_config(folder: Path) -> ViTVAEConfig:
    """Parse and check ``folder/config.json``; raise GeneratorLoadError with the reason."""
    if not folder.is_dir():
        raise GeneratorLoadError(f"MAGI-1 VAE folder {str(folder)!r} does not exist")
    cfg_path = folder / VAE_CONFIG_NAME
    if not cfg_path.is_file():
        raise GeneratorLoadError(
            f"MAGI-1 VAE folder {str(folder)!r} has no {VAE_CONFIG_NAME} (expected the official ckpt/vae folder)"
        )
    try:
        raw = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as exc:
        raise GeneratorLoadError(f"cannot read {cfg_path}: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("_class_name") != "ViTVAE":
        got = raw.get("_class_name") if isinstance(raw, dict) else type(raw).__name__
        raise GeneratorLoadError(f"{cfg_path} is not a MAGI-1 VAE config (_class_name {got!r}, expected 'ViTVAE')")
    if raw.get("model_type", "vit") != "vit":
        raise GeneratorLoadError(f"{cfg_path}: model_type {raw.get('model_type')!r} is not supported (only 'vit')")
    if "ddconfig" not in raw:
        raise GeneratorLoadError(f"{cfg_path} has no 'ddconfig'")
    try:
        return ViTVAEConfig.from_ddconfig(raw["ddconfig"])
    except (TypeError, ValueError) as exc:
        raise GeneratorLoadError(f"{cfg_path}: unsupported ddconfig: {exc}") from exc


def _weight_files(folder: Path) -> list[Path]:
    single = folder / VAE_WEIGHTS_NAME
    if single.is_file():
        return [single]
    index = folder / (VAE_WEIGHTS_NAME + ".index.json")
    if index.is_file():
        return indexed_shards(index, "MAGI-1 VAE folder")
    binary = folder / "diffusion_pytorch_model.bin"
    if binary.is_file():
        return [binary]
    raise GeneratorLoadError(
        f"MAGI-1 VAE folder {str(folder)!r} has no weights (expected one of {list(_WEIGHT_CANDIDATES)})"
    )


def _load_weights(
    folder: Path, expected: dict[str, tuple[int, ...]], device: torch.device, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    files = _weight_files(folder)
    state: dict[str, torch.Tensor] = {}
    shapes: dict[str, tuple[int, ...]] = {}

    def take(name: str, get) -> None:
        if name in expected:
            state[name] = get().to(device=device, dtype=dtype)

    for fp in files:
        try:
            if fp.suffix == ".safetensors":
                from safetensors import safe_open

                with safe_open(str(fp), framework="pt", device="cpu") as fh:
                    for k in fh.keys():
                        shapes[k] = tuple(fh.get_slice(k).get_shape())
                    bad = _shape_problems(shapes, expected, only=fh.keys())
                    if bad:
                        raise GeneratorLoadError(f"{fp}: {bad}")
                    for k in fh.keys():
                        take(k, lambda k=k: fh.get_tensor(k))
            else:
                sd = torch.load(str(fp), map_location="cpu", weights_only=True, mmap=True)
                for k, v in sd.items():
                    shapes[k] = tuple(v.shape)
                bad = _shape_problems(shapes, expected, only=sd.keys())
                if bad:
                    raise GeneratorLoadError(f"{fp}: {bad}")
                for k, v in sd.items():
                    take(k, lambda v=v: v)
        except GeneratorLoadError:
            raise
        except Exception as exc:  # corrupt/truncated file
            raise GeneratorLoadError(f"cannot read VAE weights {fp}: {exc}") from exc
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing tensors (e.g. {missing[:5]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[:5]})")
        raise GeneratorLoadError(
            f"MAGI-1 VAE weights in {str(folder)!r} do not match its config.json: " + "; ".join(parts)
        )
    return state


def _shape_problems(shapes: dict, expected: dict, only) -> str:
    bad = [
        f"{k}: {shapes[k]} != expected {expected[k]}"
        for k in only
        if k in expected and tuple(shapes[k]) != tuple(expected[k])
    ]
    if not bad:
        return ""
    return f"{len(bad)} tensors with the wrong shape for config.json ({bad[:3]})"


def missing_vae_files(path: Path) -> list[str]:
    """What a VAE folder (config.json + weights) lacks or has truncated; empty = complete."""
    if not path.is_dir():
        return [f"{path} (VAE folder does not exist)"]
    out = [] if (path / "config.json").is_file() else [f"{path}/config.json"]
    if not any(
        (path / n).is_file()
        for n in (
            "diffusion_pytorch_model.safetensors",
            "diffusion_pytorch_model.safetensors.index.json",
            "diffusion_pytorch_model.bin",
        )
    ):
        out.append(f"{path}/diffusion_pytorch_model.safetensors")
    return out + truncated_in(path)
