"""Attention kernels behind one module boundary, and the KV cache of finished chunks.

:class:`BlockCausalAttention` is the only place where self-attention scores are computed and the
only reader and writer of the KV cache. It takes full-sequence tensors (all tokens of the forward,
any number of heads), so a sequence-parallel wrapper (Ulysses, ``ulysses.py``: all-to-all from
sequence shards to head shards before, and back after) replaces the module
``layer.self_attention.core_attention`` without touching the model, and the cache it wraps stays
head-sharded behind that seam. :class:`CrossAttention` is the caption cross-attention (row-wise,
so sequence shards need no communication there).

Kernels: ``torch.nn.functional.scaled_dot_product_attention`` per query chunk (block-causal =
contiguous key range per chunk, full attention inside it), GQA through ``enable_gqa``. If the
``flash_attn`` package is importable and the tensors are fp16/bf16 on CUDA, ``flash_attn_func``
is used instead; it is never required.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

try:  # optional fast kernel
    from flash_attn import flash_attn_func as _flash_attn_func
except Exception:  # noqa: BLE001
    _flash_attn_func = None


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """q (B, H, Sq, hd), k/v (B, G, Sk, hd) -> (B, H, Sq, hd); query head h uses group h // (H/G)."""
    if _flash_attn_func is not None and mask is None and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16):
        o = _flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return o.transpose(1, 2)
    gqa = q.shape[1] != k.shape[1]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)


class RangeAttention(nn.Module):
    """Block-causal self-attention over contiguous per-chunk ranges.

    ``forward(q, k, v, q_ranges, k_ranges)``:

    * ``q`` ``(B, H, Sq, hd)``, ``k``/``v`` ``(B, G, Sk, hd)`` (Sk includes cached tokens first);
    * ``q_ranges`` ``[(qs, qe), ...]`` one per query chunk (python ints, tokens of ``q``);
    * ``k_ranges``: either one list ``[(ks, ke), ...]`` shared by the whole batch, or a list of B
      such lists (per batch element). Keys ``[ks, ke)`` are attended fully (no mask inside).

    Returns ``(B, H, Sq, hd)``. Softmax scale is ``1/sqrt(hd)``.
    """

    def forward(self, q, k, v, q_ranges: Sequence[tuple[int, int]], k_ranges) -> torch.Tensor:
        per_batch = len(k_ranges) > 0 and isinstance(k_ranges[0][0], (list, tuple))
        out = torch.empty_like(q)
        if not per_batch:
            for (qs, qe), (ks, ke) in zip(q_ranges, k_ranges):
                out[:, :, qs:qe] = _sdpa(q[:, :, qs:qe], k[:, :, ks:ke], v[:, :, ks:ke])
            return out
        for b, kr in enumerate(k_ranges):
            for (qs, qe), (ks, ke) in zip(q_ranges, kr):
                out[b : b + 1, :, qs:qe] = _sdpa(q[b : b + 1, :, qs:qe], k[b : b + 1, :, ks:ke], v[b : b + 1, :, ks:ke])
        return out


class BlockCausalAttention(nn.Module):
    """The cached chunks' keys and values joined to the current ones, then :class:`RangeAttention`.

    ``forward(q, k, v, ctx, layer)``: ``q`` ``(N, H, S, hd)``, ``k``/``v`` ``(N, G, S, hd)`` for all
    ``S = dn * ctx.tok`` tokens of the forward (after q/k-LN and RoPE). ``ctx`` carries the
    per-forward cache plan (``use_cache``, ``kv_cache``, ``slice_point``, ``tok``,
    ``update_kv_cache``, ``skip_last_chunk``) and the block-causal ranges (``q_ranges``,
    ``k_ranges``), as ``MagiDiT.forward`` sets them. With ``update_kv_cache`` the current chunks' K/V
    land at chunk slots ``slice_point, ...`` (the last one skipped with ``skip_last_chunk``); keys
    are ``cat(cache[:slice_point * tok], current)``."""

    def __init__(self) -> None:
        super().__init__()
        self.ranges = RangeAttention()

    def forward(self, q, k, v, ctx, layer: int) -> torch.Tensor:
        if ctx.use_cache:
            cache = ctx.kv_cache
            start = ctx.slice_point * ctx.tok
            if ctx.update_kv_cache:
                n = k.shape[2] - (ctx.tok if ctx.skip_last_chunk else 0)
                cache.write(layer, start, k[:, :, :n], v[:, :, :n])
            if start > 0:
                kp, vp = cache.read(layer, start, q.device)
                k = torch.cat([kp.to(k.dtype), k], dim=2)
                v = torch.cat([vp.to(v.dtype), v], dim=2)
        return self.ranges(q, k, v, ctx.q_ranges, ctx.k_ranges)


class CrossAttention(nn.Module):
    """Cross-attention of each chunk's queries to the valid caption tokens of its own row.

    ``forward(q, k, v, valid)``: ``q`` ``(R, H, tok, hd)`` (R = batch*chunks rows), ``k``/``v``
    ``(R, G, L, hd)``, ``valid`` bool ``(R, L)`` (at least one True per row)."""

    def forward(self, q, k, v, valid: torch.Tensor) -> torch.Tensor:
        if bool(valid.all()):
            return _sdpa(q, k, v)
        mask = valid[:, None, None, :]
        return _sdpa(q, k, v, mask=mask)


@dataclass
class KVCache:
    """Keys (after k-LayerNorm and RoPE) and values of finished (clean) chunks, per layer.

    ``k[i]``/``v[i]``: ``(B, G, capacity_tokens, hd)`` for layer ``i``; token ``s`` of chunk ``c``
    (0-based, oldest first) lives at ``c * tokens_per_chunk + s``. ``num_groups`` None: G is the
    writer's (the storage is made at the first write), so a rank of a tensor-parallel model holds
    only its own groups. With ``offload`` the storage
    stays on the CPU (pinned when CUDA is available) and the needed prefix is copied to the compute
    device on every read, as the official ``kv_offload``.

    The DiT reads/writes it only through :meth:`read` / :meth:`write`; see ``MagiDiT.forward``.
    """

    num_layers: int
    batch: int
    num_groups: int | None
    head_dim: int
    capacity_tokens: int
    dtype: torch.dtype = torch.float32
    device: torch.device | str = "cpu"
    offload: bool = False
    k: list = field(default_factory=list, repr=False)
    v: list = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.num_groups is not None:
            self.allocate(self.num_groups)

    def allocate(self, groups: int) -> None:
        dev = torch.device("cpu") if self.offload else torch.device(self.device)
        pin = bool(self.offload and torch.cuda.is_available())
        shape = (self.batch, groups, self.capacity_tokens, self.head_dim)
        self.num_groups = groups
        self.k = [torch.zeros(shape, dtype=self.dtype, device=dev, pin_memory=pin) for _ in range(self.num_layers)]
        self.v = [torch.zeros(shape, dtype=self.dtype, device=dev, pin_memory=pin) for _ in range(self.num_layers)]

    def select_rows(self, rows: torch.Tensor) -> None:
        """Row b now holds what row ``rows[b]`` held (any number of rows), keys and values alike."""
        for store in (self.k, self.v):
            for i, kk in enumerate(store):
                picked = kk[rows.to(kk.device)]
                store[i] = picked.pin_memory() if kk.is_pinned() else picked.contiguous()
        self.batch = int(rows.numel())

    @classmethod
    def for_model(
        cls,
        model,
        *,
        max_chunks: int,
        tokens_per_chunk: int,
        batch: int = 1,
        offload: bool = False,
        device=None,
        dtype=None,
    ) -> KVCache:
        m = model.cfg
        p = next(model.parameters())
        return cls(
            num_layers=m.num_layers,
            batch=batch,
            num_groups=None,
            head_dim=m.kv_channels,
            capacity_tokens=max_chunks * tokens_per_chunk,
            dtype=dtype or model.compute_dtype,
            device=device or p.device,
            offload=offload,
        )

    def read(self, layer: int, n_tokens: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        if n_tokens > self.capacity_tokens:
            raise ValueError(f"KV cache holds {self.capacity_tokens} tokens, {n_tokens} requested")
        if self.num_groups is None:
            raise ValueError("KV cache read before any write")
        k = self.k[layer][:, :, :n_tokens]
        v = self.v[layer][:, :, :n_tokens]
        return k.to(device, non_blocking=True), v.to(device, non_blocking=True)

    def write(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor) -> None:
        end = start + k.shape[2]
        if end > self.capacity_tokens:
            raise ValueError(f"KV cache write [{start}, {end}) exceeds capacity {self.capacity_tokens} tokens")
        if k.shape[0] != self.batch:
            raise ValueError(f"KV cache batch is {self.batch}, got keys for batch {k.shape[0]}")
        if self.num_groups is None:
            self.allocate(int(k.shape[1]))
        self.k[layer][:, :, start:end].copy_(k, non_blocking=True)
        self.v[layer][:, :, start:end].copy_(v, non_blocking=True)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.k + self.v)
