"""3-D rotary position embedding exactly as the released V-JEPA 2 weights were trained with.

Three quirks of the official implementation decide the numbers, so they are reproduced on purpose:
  * each of the depth / height / width axes gets ``d = 2·((head_dim // 3) // 2)`` channels, in that
    order; the ``head_dim − 3d`` leftover channels at the end are not rotated at all;
  * channels are rotated in adjacent pairs (2i, 2i+1) -> (−x[2i+1], x[2i]);
  * the per-channel frequency table is the d/2 frequencies written twice one after the other
    (``[ω0..ω(d/2−1), ω0..ω(d/2−1)]``), not interleaved, so the two channels of a pair usually
    turn at different speeds (upstream calls it a bug and keeps it for checkpoint compatibility).
Token ids are flattened (t, h, w) indices; a token keeps the position of its id whatever subset
of tokens is fed, which is how the context branch sees only context tokens at their true places.
"""

from __future__ import annotations

import torch


def axis_dim(head_dim: int) -> int:
    """Channels per rotated axis."""
    return 2 * ((head_dim // 3) // 2)


def split_positions(ids: torch.Tensor, grid_h: int, grid_w: int) -> tuple[torch.Tensor, ...]:
    """Flattened token ids -> (frame, row, column) positions as float32."""
    per_frame = grid_h * grid_w
    t = torch.div(ids, per_frame, rounding_mode="floor")
    rest = ids - t * per_frame
    h = torch.div(rest, grid_w, rounding_mode="floor")
    w = rest - h * grid_w
    return t.float(), h.float(), w.float()


def _axis_angles(pos: torch.Tensor, d: int) -> torch.Tensor:
    # Same float32 arithmetic as upstream (arange / (d/2), then 1 / 10000**x), so angles agree bitwise.
    omega = torch.arange(d // 2, dtype=torch.float32, device=pos.device)
    omega = omega / (d / 2.0)
    omega = 1.0 / 10000**omega
    freq = pos.unsqueeze(-1) * omega  # (..., N, d/2)
    return torch.cat([freq, freq], dim=-1)  # the repeated (not interleaved) layout


def rope_tables(ids: torch.Tensor, grid_h: int, grid_w: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos / sin tables of shape (..., N, 3d) for token ids of shape (N,) or (B, N), float32."""
    d = axis_dim(head_dim)
    angles = torch.cat([_axis_angles(p, d) for p in split_positions(ids, grid_h, grid_w)], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, tables: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate q and/or k of shape (..., B, heads, N, head_dim); tables from ``rope_tables``.

    Tables of shape (B, N, r) are per-sample; (N, r) are shared by the batch. Done in float32 and
    cast back, so half-precision models do not also lose precision in the angles.
    """
    cos, sin = tables
    if cos.ndim == 3:  # per-sample ids: add the heads axis
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    r = cos.shape[-1]
    rot = x[..., :r].float()
    x0, x1 = rot[..., 0::2], rot[..., 1::2]
    # x·cos + (−x1, x0)·sin, pair by pair (a − b is bitwise a + (−b), as upstream computes it)
    rot = torch.stack((x0 * cos[..., 0::2] - x1 * sin[..., 0::2], x1 * cos[..., 1::2] + x0 * sin[..., 1::2]), dim=-1)
    return torch.cat([rot.flatten(-2).to(x.dtype), x[..., r:]], dim=-1)
