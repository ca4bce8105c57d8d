"""The MAGI-1 transformer VAE ("ViTVAE") as plain PyTorch modules.

Architecture and state-dict key names follow the official checkpoint (``ckpt/vae`` of
``sand-ai/MAGI-1``: ``config.json`` with ``"_class_name": "ViTVAE"`` and a ``ddconfig`` dict, weights
in ``diffusion_pytorch_model.safetensors``).  Only the variant that the published checkpoint uses is
implemented: ``model_type="vit"``, ``double_z``, CLS token, no RoPE, no ``norm_code``, no
``use_final_proj``, ``conv_last_layer``.  Both ``ln_in_attn`` settings are supported.

Key layout (``P`` = ``encoder`` or ``decoder``, ``i`` = block index)::

    encoder.patch_embed.proj.{weight,bias}     Conv3d(in_chans, D, kernel=stride=(pl, p, p))
    decoder.proj_in.{weight,bias}              Linear(z_chans, D)
    P.cls_token (1,1,D)  P.pos_embed (1, 1 + (L/pl)(S/p)^2, D)
    P.blocks.i.norm1.{weight,bias}             only when ln_in_attn is false
    P.blocks.i.attn.qkv.{weight[,bias]}        Linear(D, 3D), bias iff qkv_bias
    P.blocks.i.attn.proj.{weight,bias}
    P.blocks.i.norm2.{weight,bias}
    P.blocks.i.mlp.fc1 / fc2.{weight,bias}     GELU (exact) MLP, hidden int(D * mlp_ratio)
    P.norm.{weight,bias}
    encoder.last_layer                         Linear(D, 2 * z_chans)  (mean | logvar)
    decoder.last_layer                         Conv3d(D / (pl p p), 3, kernel 3, padding 1)

Numerics (as the official modules):

* tokens are ordered (t, h, w), with the CLS token first; the learned position table is resized
  trilinearly (``align_corners=False``, CLS row excluded) when the token grid differs from the
  training grid ``(video_length/pl, video_size/p, video_size/p)``;
* with ``ln_in_attn`` q, k **and v** are normalised per head by ``(x - mean) / (std + 1e-5)`` (biased
  std, no affine) and there is no pre-attention LayerNorm; softmax scale ``1/sqrt(head_dim)``;
* the affine LayerNorms use eps 1e-5 and are computed in float32 (what the official autocast does),
  everything else runs in the parameters' dtype.  ``attention_dtype`` (default: the activations'
  dtype) lets a float32 model reproduce the official ``qkv.bfloat16()`` attention.

Single-frame conventions of the official ``ViTVAE.encode``/``decode``: a 1-frame video is repeated
to ``patch_length`` frames before encoding (-> 1 latent frame); a 1-latent-frame decode keeps only
the first of the decoded frames.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ViTVAEConfig", "ViTVAEEncoder", "ViTVAEDecoder", "posterior_mode", "LN_EPS", "QKV_NORM_EPS"]

LN_EPS = 1e-5  # nn.LayerNorm default, used by the official norm_layer
QKV_NORM_EPS = 1e-5  # the per-head parameter-free norm of ln_in_attn


@dataclass(frozen=True)
class ViTVAEConfig:
    """The ``ddconfig`` of an official ``ViTVAE`` ``config.json`` (same field names)."""

    video_size: int = 256
    video_length: int = 16
    patch_size: int = 8
    patch_length: int = 4
    in_chans: int = 3
    z_chans: int = 16
    double_z: bool = True
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    with_cls_token: bool = True
    norm_code: bool = False
    ln_in_attn: bool = True
    conv_last_layer: bool = True
    use_rope: bool = False
    use_final_proj: bool = False

    # ddconfig keys that the official constructor accepts but that do not change inference
    _IGNORED = ("qk_scale", "drop_rate", "attn_drop_rate", "drop_path_rate", "norm_layer")

    @classmethod
    def from_ddconfig(cls, ddconfig: dict[str, Any]) -> ViTVAEConfig:
        """Validate an official ``ddconfig``; raise ``ValueError`` naming what is unsupported."""
        if not isinstance(ddconfig, dict):
            raise ValueError(f"ddconfig must be a JSON object, got {type(ddconfig).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(ddconfig) - known - set(cls._IGNORED))
        if unknown:
            raise ValueError(f"unknown ddconfig keys {unknown}")
        kwargs = {k: ddconfig[k] for k in known if k in ddconfig}
        vs = kwargs.get("video_size")
        if isinstance(vs, (list, tuple)):
            if len(set(vs)) != 1:
                raise ValueError(f"non-square video_size {vs} is not supported")
            kwargs["video_size"] = int(vs[0])
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        problems = []
        if not self.double_z:
            problems.append("double_z must be true (the posterior needs mean and logvar)")
        if not self.with_cls_token:
            problems.append("with_cls_token must be true")
        if self.norm_code:
            problems.append("norm_code is not supported")
        if self.use_rope:
            problems.append("use_rope is not supported")
        if self.use_final_proj:
            problems.append("use_final_proj is not supported")
        if not self.conv_last_layer:
            problems.append("conv_last_layer must be true (the official decoder asserts it)")
        if self.embed_dim % self.num_heads:
            problems.append(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        unpatch = self.patch_size * self.patch_size * self.patch_length
        if self.embed_dim % unpatch:
            problems.append(f"embed_dim {self.embed_dim} is not divisible by patch volume {unpatch}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def latent_grid(self) -> tuple[int, int, int]:
        """Token grid the position tables were trained for: (T', H', W')."""
        s = self.video_size // self.patch_size
        return (self.video_length // self.patch_length, s, s)

    def to_ddconfig(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items()}


# --------------------------------------------------------------------------------------- pieces
class _LayerNormFP32(nn.LayerNorm):
    """Affine LayerNorm evaluated in float32, result in the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D401
        w = self.weight.float() if self.weight is not None else None
        b = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).to(x.dtype)


def _headwise_standardize(x: torch.Tensor, eps: float = QKV_NORM_EPS) -> torch.Tensor:
    """(x - mean) / (biased std + eps) over the last dim, no affine (the official ManualLayerNorm)."""
    mean = x.mean(dim=-1, keepdim=True)
    std = x.std(dim=-1, keepdim=True, unbiased=False)
    return (x - mean) / (std + eps)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool, qkv_norm: bool):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.qkv_norm = qkv_norm
        self.attention_dtype: torch.dtype | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.heads, d // self.heads)
        if self.qkv_norm:
            qkv = _headwise_standardize(qkv)
        if self.attention_dtype is not None:
            qkv = qkv.to(self.attention_dtype)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, hd)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(b, n, d).to(x.dtype)
        return self.proj(out)


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, cfg: ViTVAEConfig):
        super().__init__()
        d = cfg.embed_dim
        # with ln_in_attn the official block has no norm1 (Identity): no parameters
        self.norm1 = nn.Identity() if cfg.ln_in_attn else _LayerNormFP32(d, eps=LN_EPS)
        self.attn = _Attention(d, cfg.num_heads, cfg.qkv_bias, cfg.ln_in_attn)
        self.norm2 = _LayerNormFP32(d, eps=LN_EPS)
        self.mlp = _Mlp(d, int(d * cfg.mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def resized_positions(pos_embed: torch.Tensor, src: tuple[int, int, int], dst: tuple[int, int, int]) -> torch.Tensor:
    """The (1, 1 + prod(dst), D) position table for token grid ``dst``.

    Row 0 (CLS) is kept; the grid rows are interpolated trilinearly with ``align_corners=False``
    (in float32) unless ``dst == src``."""
    if tuple(dst) == tuple(src):
        return pos_embed
    d = pos_embed.shape[-1]
    grid = pos_embed[:, 1:].float().reshape(1, *src, d).permute(0, 4, 1, 2, 3)
    grid = F.interpolate(grid, size=tuple(dst), mode="trilinear", align_corners=False)
    grid = grid.permute(0, 2, 3, 4, 1).reshape(1, -1, d).to(pos_embed.dtype)
    return torch.cat([pos_embed[:, :1], grid], dim=1)


class _Transformer(nn.Module):
    """CLS + learned positions + blocks + final norm, shared by encoder and decoder."""

    def __init__(self, cfg: ViTVAEConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        t, h, w = cfg.latent_grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + t * h * w, d))
        self.blocks = nn.ModuleList([_Block(cfg) for _ in range(cfg.depth)])
        self.norm = _LayerNormFP32(d, eps=LN_EPS)
        self.gradient_checkpointing = False

    def run_tokens(self, tokens: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """tokens (B, N, D) ordered (t h w) -> normalised tokens (B, N, D), CLS removed."""
        b = tokens.shape[0]
        x = torch.cat([self.cls_token.expand(b, -1, -1).to(tokens.dtype), tokens], dim=1)
        x = x + resized_positions(self.pos_embed, self.cfg.latent_grid, grid).to(x.dtype)
        for blk in self.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                from torch.utils.checkpoint import checkpoint

                x = checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
        return self.norm(x)[:, 1:]

    def set_attention_dtype(self, dtype: torch.dtype | None) -> None:
        for m in self.modules():
            if isinstance(m, _Attention):
                m.attention_dtype = dtype


class _PatchEmbed(nn.Module):
    def __init__(self, cfg: ViTVAEConfig):
        super().__init__()
        k = (cfg.patch_length, cfg.patch_size, cfg.patch_size)
        self.proj = nn.Conv3d(cfg.in_chans, cfg.embed_dim, kernel_size=k, stride=k)


class ViTVAEEncoder(_Transformer):
    """Video (B, 3, T, H, W) in [-1, 1] -> moments (B, 2 z, T/pl, H/p, W/p) = [mean | logvar]."""

    def __init__(self, cfg: ViTVAEConfig):
        super().__init__(cfg)
        self.patch_embed = _PatchEmbed(cfg)
        self.last_layer = nn.Linear(cfg.embed_dim, 2 * cfg.z_chans)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        feat = self.patch_embed.proj(video)  # (B, D, t, h, w)
        b, _, t, h, w = feat.shape
        x = self.run_tokens(feat.flatten(2).transpose(1, 2), (t, h, w))
        x = self.last_layer(x)  # (B, t h w, 2z)
        return x.reshape(b, t, h, w, -1).permute(0, 4, 1, 2, 3)


class ViTVAEDecoder(_Transformer):
    """Latent (B, z, t, h, w) -> raw video (B, 3, t pl, h p, w p), nominally in [-1, 1]."""

    def __init__(self, cfg: ViTVAEConfig):
        super().__init__(cfg)
        self.proj_in = nn.Linear(cfg.z_chans, cfg.embed_dim)
        self.unpatch_channels = cfg.embed_dim // (cfg.patch_size**2 * cfg.patch_length)
        self.last_layer = nn.Conv3d(self.unpatch_channels, 3, kernel_size=3, stride=1, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = z.shape
        x = self.proj_in(z.permute(0, 2, 3, 4, 1).reshape(b, t * h * w, c))
        x = self.run_tokens(x, (t, h, w))
        p, pl, cu = self.cfg.patch_size, self.cfg.patch_length, self.unpatch_channels
        # feature index = ((pt * p + ph) * p + pw) * cu + c
        x = x.reshape(b, t, h, w, pl, p, p, cu).permute(0, 7, 1, 4, 2, 5, 3, 6)
        x = x.reshape(b, cu, t * pl, h * p, w * p)
        return self.last_layer(x)


def posterior_mode(moments: torch.Tensor) -> torch.Tensor:
    """Mode (= mean) of the diagonal Gaussian posterior: the first half of the channels."""
    return moments[:, : moments.shape[1] // 2]


def init_random_(module: nn.Module, seed: int, pos_std: float = 0.5) -> None:
    """Deterministic random weights with non-trivial CLS/position tables and norm affines
    (for tiny test models; the default init leaves those at zeros/ones)."""
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            if name.endswith(("pos_embed", "cls_token")):
                p.copy_(torch.randn(p.shape, generator=g) * pos_std)
            elif name.rsplit(".", 2)[-2].startswith("norm") if name.count(".") else False:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel() if p.ndim > 1 else p.shape[0]
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(max(fan_in, 1)))
