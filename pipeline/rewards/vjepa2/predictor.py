"""The V-JEPA 2 predictor: from context-token encodings, predict the encodings of target tokens.

Token order follows upstream exactly, because attention sums in that order and RoPE positions come
from it: context tokens then one mask token per target are concatenated, sorted by token id, run
through the blocks, un-sorted, and the target rows are kept. Positions are split with the
predictor's own configured grid (``img_size // patch_size``), not the input's, as upstream does.
Parameter names match the official checkpoints (``predictor_embed``, ``mask_tokens.N``,
``predictor_blocks.N``, ``predictor_norm``, ``predictor_proj``).
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.rewards.vjepa2.rope import rope_tables
from pipeline.rewards.vjepa2.variants import PredictorArch
from pipeline.rewards.vjepa2.vit import Block, gather_tokens

# Upstream's forward default; the released predictors were trained with it.
DEFAULT_MASK_INDEX = 1


class Predictor(nn.Module):
    def __init__(self, arch: PredictorArch) -> None:
        super().__init__()
        self.arch = arch
        dim = arch.predictor_embed_dim
        self.num_heads = arch.num_heads
        self.predictor_embed = nn.Linear(arch.embed_dim, dim)
        self.mask_tokens = nn.ParameterList(nn.Parameter(torch.zeros(1, 1, dim)) for _ in range(arch.num_mask_tokens))
        self.predictor_blocks = nn.ModuleList(
            Block(dim, arch.num_heads, arch.mlp_ratio, arch.qkv_bias, arch.norm_eps, arch.use_silu, arch.wide_silu)
            for _ in range(arch.depth)
        )
        self.predictor_norm = nn.LayerNorm(dim, eps=arch.norm_eps)
        self.predictor_proj = nn.Linear(dim, arch.embed_dim)

    def forward(
        self, ctx: torch.Tensor, ctx_ids: torch.Tensor, tgt_ids: torch.Tensor, mask_index: int = DEFAULT_MASK_INDEX
    ) -> torch.Tensor:
        """ctx (B, Nc, D_enc) at token ids ``ctx_ids`` -> predictions (B, Nt, D_enc) at ``tgt_ids``.

        Ids are (N,) shared by the batch (the fast path: one sort for all) or (B, N) per sample.
        """
        b, n_ctx, _ = ctx.shape
        n_tgt = tgt_ids.shape[-1]
        if int(tgt_ids.max()) >= self.arch.num_patches:
            # Upstream builds exactly num_patches mask tokens and would index out of range.
            raise ValueError(
                f"target token id {int(tgt_ids.max())} is outside the predictor's "
                f"{self.arch.num_patches} tokens (num_frames={self.arch.num_frames})"
            )
        x = self.predictor_embed(ctx)
        token = self.mask_tokens[mask_index % len(self.mask_tokens)]
        x = torch.cat([x, token.to(x.dtype).expand(b, n_tgt, -1)], dim=1)
        ids = torch.cat([ctx_ids, tgt_ids], dim=-1).to(x.device)
        order = torch.argsort(ids, dim=-1)
        sorted_already = bool((order == torch.arange(ids.shape[-1], device=ids.device)).all())
        if not sorted_already:  # causal context/target splits are already in token order
            ids = torch.gather(ids, -1, order)
            x = gather_tokens(x, order)
        grid = self.arch.grid
        rope = rope_tables(ids, grid, grid, self.arch.predictor_embed_dim // self.num_heads)
        for blk in self.predictor_blocks:
            x = blk(x, rope)
        # Norm and projection are per token: apply them to the target rows only.
        if sorted_already:
            x = x[:, n_ctx:]
        else:
            x = gather_tokens(x, torch.argsort(order, dim=-1)[..., n_ctx:])
        return self.predictor_proj(self.predictor_norm(x))
