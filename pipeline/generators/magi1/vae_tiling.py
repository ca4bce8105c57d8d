"""Tiled VAE encode/decode with the geometry and linear blend of the official MAGI-1 tile processor.

The official post-processing decodes a finished chunk with temporal tiles of ``fps // 2`` video
frames (``fps // 2 // 4`` latent frames, i.e. 3 at 24 fps, no temporal overlap) and spatial tiles of
256 px (32 latents) with overlap factor 0.25.  For one axis with latent tile ``Lt``, factor ``f``
(8 spatial, 4 temporal) and overlap ``o``::

    decode: tile starts every int(Lt (1 - o)) latents, ceil(size / stride) tiles;
            decoded tile size R = Lt f, blend E = int(R o), keep the first R - E samples
    encode: tile starts every int(Tp (1 - o)) pixels (Tp = pixel tile), Lt = Tp // f;
            blend E = int(Lt o), keep the first Lt - E latents

Tiles are visited in raster order (t, then h, then w).  Tile ``b`` is blended with its previous
neighbour ``a`` along t, then h, then w: on the first ``e = min(len(a), len(b), E)`` samples,
``b[k] = a[len(a) - e + k] * (1 - k/e) + b[k] * (k/e)``; then it is cropped and the crops are
concatenated.  In the official **decode** the neighbours are the raw decoded tiles; in the official
**encode** the blend is in place, so the neighbours are the already blended tiles.  Both variants
are reproduced (``neighbours="raw"`` / ``"blended"``).

Everything here is functional (no in-place writes), so gradients flow through a tiled decode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = ["AxisPlan", "TilePlan", "decode_plan", "encode_plan", "blend_weights", "blend_along", "run_tiled"]


@dataclass(frozen=True)
class AxisPlan:
    """Tiling of one axis: input tile starts/length, blend extent and kept length of outputs."""

    starts: tuple[int, ...]
    tile: int  # input tile length (latents for decode, pixels/frames for encode)
    blend: int  # blend extent in output samples
    keep: int  # output samples kept per tile (before the next tile starts)


@dataclass(frozen=True)
class TilePlan:
    axes: tuple[AxisPlan, AxisPlan, AxisPlan]  # t, h, w


def _starts(size: int, stride: int) -> tuple[int, ...]:
    if stride < 1:
        raise ValueError(f"tile stride must be >= 1, got {stride}")
    return tuple(range(0, size, stride))  # ceil(size / stride) starts, as the official loop


def decode_plan(
    latent_shape: Sequence[int],
    *,
    tile_sample_length: int,
    tile_sample_size: tuple[int, int] = (256, 256),
    spatial_overlap: float = 0.25,
    temporal_overlap: float = 0.0,
    spatial_factor: int = 8,
    temporal_factor: int = 4,
) -> TilePlan:
    """Plan for decoding a latent of shape (..., t, h, w)."""
    t, h, w = (int(v) for v in latent_shape[-3:])
    axes = []
    for size, sample_tile, factor, ov in (
        (t, tile_sample_length, temporal_factor, temporal_overlap),
        (h, tile_sample_size[0], spatial_factor, spatial_overlap),
        (w, tile_sample_size[1], spatial_factor, spatial_overlap),
    ):
        lat_tile = sample_tile // factor
        if lat_tile < 1:
            raise ValueError(f"tile of {sample_tile} samples is smaller than the factor {factor}")
        real = lat_tile * factor
        blend = int(real * ov)
        axes.append(AxisPlan(_starts(size, int(lat_tile * (1 - ov))), lat_tile, blend, real - blend))
    return TilePlan(tuple(axes))  # type: ignore[arg-type]


def encode_plan(
    video_shape: Sequence[int],
    *,
    tile_sample_length: int,
    tile_sample_size: tuple[int, int] = (256, 256),
    spatial_overlap: float = 0.25,
    temporal_overlap: float = 0.0,
    spatial_factor: int = 8,
    temporal_factor: int = 4,
) -> TilePlan:
    """Plan for encoding a video of shape (..., T, H, W)."""
    t, h, w = (int(v) for v in video_shape[-3:])
    axes = []
    for size, sample_tile, factor, ov in (
        (t, tile_sample_length, temporal_factor, temporal_overlap),
        (h, tile_sample_size[0], spatial_factor, spatial_overlap),
        (w, tile_sample_size[1], spatial_factor, spatial_overlap),
    ):
        lat_tile = sample_tile // factor
        blend = int(lat_tile * ov)
        axes.append(AxisPlan(_starts(size, int(sample_tile * (1 - ov))), sample_tile, blend, lat_tile - blend))
    return TilePlan(tuple(axes))  # type: ignore[arg-type]


def blend_weights(extent: int) -> list[float]:
    """Weights of the *incoming* tile on the ``extent`` overlapping samples: k / extent."""
    return [k / extent for k in range(extent)]


def blend_along(prev: torch.Tensor, cur: torch.Tensor, extent: int, dim: int) -> torch.Tensor:
    """Linear cross-fade of the tail of ``prev`` into the head of ``cur`` along ``dim`` (functional)."""
    e = min(prev.shape[dim], cur.shape[dim], extent)
    if e <= 0:
        return cur
    shape = [1] * cur.ndim
    shape[dim] = e
    w = torch.tensor(blend_weights(e), dtype=torch.float32, device=cur.device).view(shape)
    tail = prev.narrow(dim, prev.shape[dim] - e, e).float()
    head = cur.narrow(dim, 0, e).float()
    mixed = (tail * (1 - w) + head * w).to(cur.dtype)
    return torch.cat([mixed, cur.narrow(dim, e, cur.shape[dim] - e)], dim=dim)


def run_tiled(
    x: torch.Tensor,
    fn: Callable[[torch.Tensor], torch.Tensor],
    plan: TilePlan,
    *,
    neighbours: str = "raw",
    spread=None,
) -> torch.Tensor:
    """Apply ``fn`` to every tile of ``x`` (B, C, T, H, W) and stitch the outputs per ``plan``.

    ``neighbours``: ``"raw"`` blends with the neighbours' raw outputs (official decode),
    ``"blended"`` with their already blended outputs (official encode). ``spread``: the ranks of
    a replica (``replica_work.ReplicaWork``) that share the tiles, each computing every
    ``size``-th and receiving the rest (not differentiable: for decodes without grad)."""
    if neighbours not in ("raw", "blended"):
        raise ValueError(f"neighbours must be 'raw' or 'blended', got {neighbours!r}")
    at, ah, aw = plan.axes
    nt, nh, nw = len(at.starts), len(ah.starts), len(aw.starts)
    keys = [(f, i, j) for f in range(nt) for i in range(nh) for j in range(nw)]

    def tile(k: int) -> torch.Tensor:
        f, i, j = keys[k]
        t0, h0, w0 = at.starts[f], ah.starts[i], aw.starts[j]
        return fn(x[:, :, t0 : t0 + at.tile, h0 : h0 + ah.tile, w0 : w0 + aw.tile])

    outputs = [tile(k) for k in range(len(keys))] if spread is None else spread.pieces(len(keys), tile)
    raw = dict(zip(keys, outputs))
    done: dict[tuple[int, int, int], torch.Tensor] = {}
    kept: dict[tuple[int, int, int], torch.Tensor] = {}
    src = raw if neighbours == "raw" else done
    for f in range(nt):
        for i in range(nh):
            for j in range(nw):
                cur = raw[(f, i, j)]
                if f > 0:
                    cur = blend_along(src[(f - 1, i, j)], cur, at.blend, 2)
                if i > 0:
                    cur = blend_along(src[(f, i - 1, j)], cur, ah.blend, 3)
                if j > 0:
                    cur = blend_along(src[(f, i, j - 1)], cur, aw.blend, 4)
                done[(f, i, j)] = cur
                kept[(f, i, j)] = cur[:, :, : at.keep, : ah.keep, : aw.keep]
    slabs = []
    for f in range(nt):
        rows = [torch.cat([kept[(f, i, j)] for j in range(nw)], dim=4) for i in range(nh)]
        slabs.append(torch.cat(rows, dim=3))
    return torch.cat(slabs, dim=2)
