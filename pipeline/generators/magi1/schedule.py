"""MAGI-1 sampling schedule as pure functions (no model, no state).

Time convention: **t = 0 is pure noise, t = 1 is clean**. The grid is ``linspace(0, 1, n+1)``,
squared, then the SD3 shift with shift 3 (``t <- (t/3) / (1 - 2t/3)``); 12 steps use the official
mixed-step "shortcut" grid. ``window_size`` chunks are in flight; the chunk in schedule stage ``s``
uses ``t_grid[s * n/window + i]`` at step ``i`` of the current window stage; with the shift the four
stage boundaries are t = 0, 0.0217, 0.1, 0.3, 1.0.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

SHIFT = 3.0


def t_grid(num_steps: int, shortcut_mode: str = "8,16,16", shift: float = SHIFT) -> torch.Tensor:
    """The ``num_steps + 1`` float32 t values, from 0 (noise) to ~1 (clean)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if num_steps == 12:
        base = torch.linspace(0, 1, 5) / 4
        accu = torch.linspace(0, 1, 5)
        base = base[:3] if shortcut_mode == "16,16,8" else torch.cat([base[:1], base[2:4]])
        t = torch.cat([base + a for a in accu])[: num_steps + 1]
    else:
        t = torch.linspace(0, 1, num_steps + 1)
    t = t**2
    inv = 1.0 / shift
    return inv * t / (1 + (inv - 1) * t)


def distill_intervals(num_steps: int, shortcut_mode: str = "8,16,16") -> torch.Tensor:
    """Per-step interval multipliers of the distilled model (1s unless num_steps % 3 == 0)."""
    if num_steps % 3 == 0:
        pat = [1, 1, 2] if shortcut_mode == "16,16,8" else [2, 1, 1]
        return torch.tensor(pat * (num_steps // 3))
    return torch.ones(num_steps)


def distill_dt_factor(num_steps: int, distill_interval: float | None = None) -> float:
    """The value passed to ``MagiDiT.forward(distill_dt=...)``: ``num_steps/4*2``, or for 12 steps
    ``4/distill_interval*2`` (distill_interval of the current step)."""
    if num_steps == 12:
        if distill_interval is None:
            raise ValueError("12-step distill needs the step's distill_interval")
        return 4.0 / float(distill_interval) * 2.0
    return num_steps / 4 * 2.0


def stage_boundaries(num_steps: int, num_stages: int = 4, shortcut_mode: str = "8,16,16") -> list[float]:
    """t at the start of each of ``num_stages`` stages, plus the final t (``num_stages + 1`` values)."""
    if num_steps % num_stages:
        raise ValueError(f"num_steps={num_steps} is not divisible by {num_stages} stages")
    g = t_grid(num_steps, shortcut_mode)
    per = num_steps // num_stages
    return [float(g[s * per]) for s in range(num_stages + 1)]


def stage_of_t(t: float, boundaries: Sequence[float] = (0.0, 0.0217, 0.1, 0.3, 1.0)) -> int:
    """Stage index of a t value: ``boundaries[s] <= t < boundaries[s+1]`` (last stage includes 1)."""
    s = bisect.bisect_right(list(boundaries), float(t)) - 1
    return max(0, min(s, len(boundaries) - 2))


def num_chunks(num_frames: int, mode: str = "t2v", chunk_width: int = 6, temporal_downsample: int = 4) -> int:
    """Chunks generated for ``num_frames`` video frames (t2v: ceil(nf//4 / 6); i2v: one extra latent frame)."""
    lat = num_frames // temporal_downsample
    if mode == "i2v":
        lat += 1
    elif mode not in ("t2v", "v2v"):
        raise ValueError(f"mode must be t2v, i2v or v2v, got {mode!r}")
    return max(1, math.ceil(lat / chunk_width))


@dataclass(frozen=True)
class WindowStage:
    """One window position: chunks ``[chunk_start, chunk_end)`` are denoised, the oldest in
    schedule stage ``t_end - 1``, the newest in stage ``t_start``."""

    chunk_start: int
    chunk_end: int
    t_start: int
    t_end: int

    @property
    def num_chunks(self) -> int:
        return self.chunk_end - self.chunk_start


def window_stages(chunk_num: int, window_size: int, chunk_offset: int = 0) -> list[WindowStage]:
    """The sliding-window sequence (official ``generate_sequences``): one entry per window stage.

    ``chunk_offset`` = whole clean prefix chunks (v2v), which are never denoised."""
    out = []
    for i in range(chunk_offset, chunk_num + window_size - 1):
        cs = max(chunk_offset, i - window_size + 1)
        ce = min(chunk_num, i + 1)
        ts = max(0, i - chunk_num + 1)
        te = min(window_size, i - chunk_offset + 1)
        out.append(WindowStage(cs, ce, ts, te))
    return out


def total_forward_steps(chunk_num: int, num_steps: int, window_size: int, chunk_offset: int = 0) -> int:
    return num_steps // window_size * (chunk_num + window_size - 1 - chunk_offset)


def step_position(step: int, num_steps: int, window_size: int) -> tuple[int, int]:
    """Global forward step -> (window stage index, step index inside it)."""
    per = num_steps // window_size
    return step // per, step % per


def chunk_step_indices(stage: WindowStage, num_steps: int, window_size: int, denoise_idx: int) -> list[int]:
    """Index into ``t_grid`` of every denoised chunk of ``stage`` (oldest chunk first)."""
    per = num_steps // window_size
    idx = [s * per + denoise_idx for s in range(stage.t_start, stage.t_end)]
    return idx[::-1]


def chunk_timesteps(
    grid: torch.Tensor,
    stage: WindowStage,
    num_steps: int,
    window_size: int,
    denoise_idx: int,
    clean_t: float | None = None,
) -> torch.Tensor:
    """t of each denoised chunk (oldest first); with ``clean_t`` a clean chunk is prepended."""
    t = grid[chunk_step_indices(stage, num_steps, window_size, denoise_idx)]
    if clean_t is not None:
        t = torch.cat([torch.tensor([clean_t], dtype=t.dtype), t])
    return t


def chunk_kv_ranges(
    slice_point: int,
    step_indices: Sequence[int],
    num_steps: int,
    noise2clean_kvrange: Sequence[int],
    clean_chunk_kvrange: int,
    tokens_per_chunk: int,
    batch: int = 1,
) -> torch.Tensor:
    """Key ranges ``(batch*dn, 2)`` int32 for the chunks of one forward (official coordinates).

    ``step_indices[j]`` is chunk j's t-grid index (``num_steps`` for a clean chunk at clean_t).
    A chunk at stage s sees itself and ``noise2clean_kvrange[s] - 1`` older chunks (cached ones
    included); a clean chunk sees ``clean_chunk_kvrange`` (-1: ``noise2clean_kvrange[-1]``).
    Without ``noise2clean_kvrange`` every chunk sees everything before it (causal)."""
    dn = len(step_indices)
    range_num = slice_point + dn
    rows = []
    for b in range(batch):
        base = b * range_num
        for j, st in enumerate(step_indices):
            end = slice_point + j + 1
            if not noise2clean_kvrange:
                start = 0
            else:
                per = num_steps // len(noise2clean_kvrange)
                if st == num_steps:
                    k = clean_chunk_kvrange if clean_chunk_kvrange != -1 else noise2clean_kvrange[-1]
                else:
                    k = noise2clean_kvrange[st // per]
                start = max(0, end - k)
            rows.append([(base + start) * tokens_per_chunk, (base + end) * tokens_per_chunk])
    return torch.tensor(rows, dtype=torch.int32)


def cfg_scales(
    t: float, cfg_t_range: Sequence[float], prev_chunk_scales: Sequence[float], text_scales: Sequence[float]
) -> tuple[float, float]:
    """(history scale p, text scale s) for a chunk at ``t``: interval from
    ``searchsorted(cfg_t_range - 1e-7, t) - 1``; boundaries fall in the upper interval.
    Combine as ``v = (1-p)*uncond + (p-s)*cond_pre + s*cond_pre_text``."""
    edges = [float(e) - 1e-7 for e in cfg_t_range]
    i = bisect.bisect_left(edges, float(t)) - 1
    i = max(0, min(i, len(edges) - 1))
    return float(prev_chunk_scales[i]), float(text_scales[i])
