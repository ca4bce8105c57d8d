"""The V-JEPA 2 video encoder (a ViT with 3-D RoPE), owned here so the official checkpoints load
into it with their own parameter names (``patch_embed.proj``, ``blocks.N.attn.qkv``, ``norm``...).

Differences from upstream are execution details only: attention is always
``scaled_dot_product_attention`` (upstream's ``use_sdpa=False`` path computes the same softmax),
RoPE angles are computed once per forward instead of per layer, and there is no training code
(dropout, drop-path, activation checkpointing).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.rewards.vjepa2.rope import apply_rope, rope_tables
from pipeline.rewards.vjepa2.variants import EncoderArch


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)  # rows: all q heads, all k heads, all v heads
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim)).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(qkv[:2], rope)  # q and k in one go
        x = F.scaled_dot_product_attention(q, k, qkv[2])
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact erf GELU, as upstream
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLU(nn.Module):
    """Upstream's ``use_silu=True`` MLP; ``wide_silu`` shrinks the hidden width to 2/3, rounded up to 8."""

    def __init__(self, dim: int, hidden: int, wide: bool) -> None:
        super().__init__()
        if wide:
            hidden = (int(2 * hidden / 3) + 7) // 8 * 8
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(dim, hidden)
        self.fc3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.silu(self.fc1(x)) * self.fc2(x))


class Block(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        qkv_bias: bool,
        norm_eps: float,
        use_silu: bool,
        wide_silu: bool,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        hidden = int(dim * mlp_ratio)
        self.mlp = SwiGLU(dim, hidden, wide_silu) if use_silu else MLP(dim, hidden)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class PatchEmbed3D(nn.Module):
    def __init__(self, patch_size: int, tubelet_size: int, in_chans: int, dim: int) -> None:
        super().__init__()
        k = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, dim, kernel_size=k, stride=k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, C, T, H, W) -> (B, t·h·w, D)


def gather_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Rows ``ids`` of (B, N, D): ids (K,) shared by the batch or (B, K) per sample."""
    if ids.ndim == 1:
        return x.index_select(1, ids)
    return torch.gather(x, 1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class VisionTransformer(nn.Module):
    def __init__(self, arch: EncoderArch) -> None:
        super().__init__()
        self.arch = arch
        self.patch_size, self.tubelet_size = arch.patch_size, arch.tubelet_size
        self.embed_dim, self.num_heads = arch.embed_dim, arch.num_heads
        self.patch_embed = PatchEmbed3D(arch.patch_size, arch.tubelet_size, arch.in_chans, arch.embed_dim)
        self.blocks = nn.ModuleList(
            Block(
                arch.embed_dim,
                arch.num_heads,
                arch.mlp_ratio,
                arch.qkv_bias,
                arch.norm_eps,
                arch.use_silu,
                arch.wide_silu,
            )
            for _ in range(arch.depth)
        )
        self.norm = nn.LayerNorm(arch.embed_dim, eps=arch.norm_eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Encode video (B, C, T, H, W) -> (B, N, D), after the model's own final norm.

        ``keep``: token ids (K,) or (B, K) to keep. They are dropped right after the patch
        embedding, so kept tokens never attend to the others, and each keeps its own (t, h, w)
        RoPE position. Positions use the input's grid, as upstream does.
        """
        _, _, t, h, w = x.shape
        grid_h, grid_w = h // self.patch_size, w // self.patch_size
        x = self.patch_embed(x)
        ids = torch.arange(x.shape[1], device=x.device) if keep is None else keep.to(x.device)
        if keep is not None:
            x = gather_tokens(x, ids)
        rope = rope_tables(ids, grid_h, grid_w, self.embed_dim // self.num_heads)
        for blk in self.blocks:
            x = blk(x, rope)
        return self.norm(x)
