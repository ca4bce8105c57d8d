"""Ulysses sequence parallelism for the MAGI-1 DiT, applied from outside the model.

Every rank of an ``sp`` group holds a share of each chunk's tokens through the whole layer stack
(:class:`TokenShards` replaces the model's ``sequence`` seam): rank r holds tokens
``[r * t, (r + 1) * t)`` of every chunk, ``t = ceil(tok / sp)``, the last share zero-padded when
``sp`` does not divide the chunk. Per-chunk shares keep what the layers do per chunk (adaLN gates,
caption cross-attention rows, RoPE slices) local, so only self-attention communicates.

Around self-attention (:class:`UlyssesAttention` wraps ``core_attention``) one all-to-all turns
sequence shards into head shards: each rank then holds all tokens of ``heads / sp`` query heads
and their KV groups, drops the padding, runs the block-causal attention with its KV cache (so the
cache is head-sharded and never moves), and a second all-to-all turns the result back. When a
rank's KV groups are fewer than ``sp`` (GQA), each group is repeated ``sp / groups`` times before
the all-to-all so every rank receives the group its query heads use.

Both seams are differentiable (reward guidance through the model): the all-to-alls are the
autograd-aware functional collectives, the split and gather of the replicated hidden states have
their own backward (``_Split`` / ``_Gather``).
"""

from __future__ import annotations

import math

import torch
import torch.distributed._functional_collectives as funcol
from torch import nn
from torch.profiler import record_function

EXCHANGE = "ulysses.exchange"  # the profiler's name for the sequence-parallel collectives (bench)


def _all_to_all(x: torch.Tensor, group) -> torch.Tensor:
    """Block i of dim 0 goes to rank i; block j of the result came from rank j."""
    with record_function(EXCHANGE):
        return funcol.wait_tensor(funcol.all_to_all_single_autograd(x.contiguous(), None, None, group))


class TokenShards(nn.Module):
    """The model's ``sequence`` seam under sequence parallelism: each rank's share of every chunk.

    The tensors on either side of the seam are the same on every rank (replicated), so, as
    Megatron's sequence-parallel regions: the gradient of a split is the all-gather of the shares'
    gradients, and the gradient of a gather is this rank's share of it (every rank holds the same
    loss, so summing them would count it ``sp`` times)."""

    def __init__(self, group, rank: int, size: int) -> None:
        super().__init__()
        self.group, self.rank, self.size = group, rank, size

    def split(self, x: torch.Tensor, dn: int, dim: int) -> torch.Tensor:
        """This rank's share of every chunk's tokens of ``x`` (tokens of ``dn`` chunks along ``dim``)."""
        return _Split.apply(x, self, dn, dim)

    def gather(self, x: torch.Tensor, dn: int, tok: int, dim: int) -> torch.Tensor:
        """All ``tok`` tokens of each chunk again, from every rank's :meth:`split` share."""
        return _Gather.apply(x, self, dn, tok, dim)

    def local(self, x: torch.Tensor, dn: int, dim: int) -> torch.Tensor:
        x = x.movedim(dim, 0)
        tok = x.shape[0] // dn
        t = math.ceil(tok / self.size)
        x = x.reshape(dn, tok, *x.shape[1:])
        if t * self.size != tok:
            x = torch.cat([x, x.new_zeros(dn, t * self.size - tok, *x.shape[2:])], dim=1)
        mine = x[:, self.rank * t : (self.rank + 1) * t]
        return mine.reshape(dn * t, *x.shape[2:]).movedim(0, dim).contiguous()

    def whole(self, x: torch.Tensor, dn: int, tok: int, dim: int) -> torch.Tensor:
        x = x.movedim(dim, 0)
        t = x.shape[0] // dn
        with record_function(EXCHANGE):
            parts = funcol.wait_tensor(funcol.all_gather_single(x.contiguous(), 0, self.group))  # rank order
        whole = parts.reshape(self.size, dn, t, *x.shape[1:]).transpose(0, 1)  # (dn, sp, t, ...)
        whole = whole.reshape(dn, self.size * t, *x.shape[1:])[:, :tok]
        return whole.reshape(dn * tok, *x.shape[1:]).movedim(0, dim).contiguous()


class _Split(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, shards: TokenShards, dn: int, dim: int):
        ctx.shards, ctx.dn, ctx.dim, ctx.tok = shards, dn, dim, x.shape[dim] // dn
        return shards.local(x, dn, dim)

    @staticmethod
    def backward(ctx, grad):
        return ctx.shards.whole(grad, ctx.dn, ctx.tok, ctx.dim), None, None, None


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, shards: TokenShards, dn: int, tok: int, dim: int):
        ctx.shards, ctx.dn, ctx.dim = shards, dn, dim
        return shards.whole(x, dn, tok, dim)

    @staticmethod
    def backward(ctx, grad):
        return ctx.shards.local(grad, ctx.dn, ctx.dim), None, None, None, None


class UlyssesAttention(nn.Module):
    """Sequence shards -> head shards -> ``inner`` (block-causal attention and its KV cache on all
    tokens of this rank's heads) -> sequence shards again."""

    def __init__(self, inner: nn.Module, group, size: int) -> None:
        super().__init__()
        self.inner, self.group, self.size = inner, group, size

    def _to_heads(self, x: torch.Tensor, dn: int, tok: int) -> torch.Tensor:
        """(N, h, dn*t, hd) local tokens of all h heads -> (N, h/sp, dn*tok, hd) all tokens."""
        N, h, L, hd = x.shape
        sp, t = self.size, L // dn
        x = x.reshape(N, sp, h // sp, L, hd).transpose(0, 1)  # head block i -> rank i
        x = _all_to_all(x, self.group)  # (sp: source rank = token share, N, h/sp, L, hd)
        x = x.reshape(sp, N, h // sp, dn, t, hd).permute(1, 2, 3, 0, 4, 5)  # (N, h/sp, dn, sp, t, hd)
        return x.reshape(N, h // sp, dn, sp * t, hd)[:, :, :, :tok].reshape(N, h // sp, dn * tok, hd)

    def _to_tokens(self, x: torch.Tensor, dn: int, t: int) -> torch.Tensor:
        """Inverse of :meth:`_to_heads`: (N, h/sp, dn*tok, hd) -> (N, h, dn*t, hd)."""
        N, hl, S, hd = x.shape
        sp, tok = self.size, S // dn
        x = x.reshape(N, hl, dn, tok, hd)
        if sp * t != tok:
            x = torch.cat([x, x.new_zeros(N, hl, dn, sp * t - tok, hd)], dim=3)
        x = x.reshape(N, hl, dn, sp, t, hd).permute(3, 0, 1, 2, 4, 5)  # token share i -> rank i
        x = _all_to_all(x, self.group)  # (sp: source rank = head block, N, hl, dn, t, hd)
        return x.transpose(0, 1).reshape(N, sp * hl, dn * t, hd)

    def forward(self, q, k, v, ctx, layer: int) -> torch.Tensor:
        dn, tok, sp = ctx.dn, ctx.tok, self.size
        t = q.shape[2] // dn
        groups = k.shape[1]
        if groups % sp:  # fewer KV groups than ranks: each rank gets a copy of its heads' group
            k = k.repeat_interleave(sp // groups, dim=1)
            v = v.repeat_interleave(sp // groups, dim=1)
        q, k, v = (self._to_heads(a, dn, tok) for a in (q, k, v))
        return self._to_tokens(self.inner(q, k, v, ctx, layer), dn, t)
