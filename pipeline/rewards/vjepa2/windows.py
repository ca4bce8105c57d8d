"""Frame subsampling, sliding windows and causal token masks, as in WMReward's scorer."""

from __future__ import annotations

import numpy as np
import torch


def subsample_indices(n: int, max_frames: int | None) -> np.ndarray:
    """Uniform frame indices, WMReward style: ``np.linspace(0, n-1, min(n, max_frames)).astype(int)``.

    Flooring (astype) rather than rounding is deliberate: it is what the reference does, and
    rounding picks different frames, hence different scores.
    """
    if n <= 0:
        raise ValueError(f"clip has no frames (n={n})")
    if max_frames is None:
        return np.arange(n)
    if max_frames <= 0:
        raise ValueError(f"max_frames must be positive or None, got {max_frames}")
    k = min(n, max_frames)
    return np.linspace(0, n - 1, k).astype(int)


def window_starts(num_frames: int, window_size: int, stride: int) -> list[int]:
    """Start frame of every full window; trailing frames that do not fill a window are dropped."""
    if window_size <= 0 or stride <= 0:
        raise ValueError(f"window_size and stride must be positive, got {window_size}, {stride}")
    if num_frames < window_size:
        raise ValueError(
            f"clip has {num_frames} frames, fewer than one window of {window_size}; "
            "use a longer clip or a smaller window_size"
        )
    return list(range(0, num_frames - window_size + 1, stride))


def token_split(window_size: int, context_frames: int, tubelet: int, grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal context/target token indices of one window, as 1-D int64 tensors.

    Tokens are flattened (t', h, w) with token index = t'·grid² + h·grid + w, so the first
    ``context_frames`` frames are exactly the first ``context_frames/tubelet·grid²`` tokens.
    """
    if tubelet <= 0 or grid <= 0:
        raise ValueError(f"tubelet and grid must be positive, got {tubelet}, {grid}")
    if window_size % tubelet:
        # The tubelet Conv3d would silently drop the trailing frames.
        raise ValueError(f"window_size {window_size} is not a multiple of the tubelet size {tubelet}")
    if context_frames <= 0 or context_frames % tubelet:
        raise ValueError(f"context_frames {context_frames} must be a positive multiple of the tubelet size {tubelet}")
    if context_frames >= window_size:
        raise ValueError(f"context_frames {context_frames} leaves no target frames in a window of {window_size}")
    per_slot = grid * grid
    n_ctx = context_frames // tubelet * per_slot
    n_all = window_size // tubelet * per_slot
    idx = torch.arange(n_all, dtype=torch.long)
    return idx[:n_ctx], idx[n_ctx:]
