"""3D rotary position embedding with learned frequency bands (``rope.bands`` in the checkpoint).

Conventions (as the official learnable RoPE in SandAI-org/MAGI-1: inference/model/dit/dit_module.py):

* ``nb`` learned bands (default ``1 / 10000**(k/nb)``), ``nb = (hidden_size // heads) // 8``;
* the token grid is ``(T_total, h, w)`` with ``T_total = T + frames_per_chunk * slice_point``; the
  current tokens are its *last* ``T*h*w`` rows, so cached chunks shift the time positions;
* time positions are ``0..T_total-1``; h and w are centred (``i - (n-1)/2``); every axis with more
  than one position is rescaled by ``(ref-1)/(n-1)`` with ``ref = [T_total, h/r, w/r]``,
  ``r = sqrt(h*w/256)``;
* the angle table is ``(S, 3*nb)`` laid out ``[t bands | h bands | w bands]``; it rotates the first
  ``6*nb`` channels of every q/k head non-interleaved (rotate-half: ``x1 = ch[:3nb]``,
  ``x2 = ch[3nb:6nb]``); the remaining channels pass through.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def default_bands(num_bands: int, temperature: float = 10000.0) -> torch.Tensor:
    k = torch.arange(num_bands, dtype=torch.int64).to(torch.float32) / num_bands
    return 1.0 / (temperature**k)


def _axis(n: int, ref: float, centred: bool, start: int = 0, count: int | None = None) -> torch.Tensor:
    """Positions of one axis (float32), rescaled to ``ref`` the same way the official code does."""
    pos = torch.arange(n, dtype=torch.int64).to(torch.float32)
    if centred:
        pos = pos - (n - 1) / 2
    if n > 1:
        pos = pos / (n - 1) * (ref - 1)
    if count is not None:
        pos = pos[start : start + count]
    return pos


def rope_angles(bands: torch.Tensor, t_cur: int, h: int, w: int, t_prev: int = 0) -> torch.Tensor:
    """Angle table ``(t_cur*h*w, 3*nb)`` (float32) for the current tokens ordered ``(t h w)``.

    ``t_prev`` = latent frames of cached chunks before the current ones (``frames * slice_point``)."""
    bands = bands.float()
    t_total = t_cur + t_prev
    r = math.sqrt((h * w) / (16 * 16))
    pt = _axis(t_total, t_total, False, start=t_prev, count=t_cur).to(bands.device)
    ph = _axis(h, h / r, True).to(bands.device)
    pw = _axis(w, w / r, True).to(bands.device)
    nb = bands.numel()
    at = (pt[:, None] * bands)[:, None, None, :].expand(t_cur, h, w, nb)
    ah = (ph[:, None] * bands)[None, :, None, :].expand(t_cur, h, w, nb)
    aw = (pw[:, None] * bands)[None, None, :, :].expand(t_cur, h, w, nb)
    return torch.cat([at, ah, aw], dim=-1).reshape(t_cur * h * w, 3 * nb)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE on the first ``2*cos.shape[-1]`` channels of ``x`` (..., S, hd).

    ``cos``/``sin``: ``(S, R/2)`` broadcast over the leading dims."""
    half = cos.shape[-1]
    x1 = x[..., :half]
    x2 = x[..., half : 2 * half]
    rest = x[..., 2 * half :]
    cos = cos.to(x.dtype)
    sin = sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest], dim=-1)


class LearnedRope3D(nn.Module):
    """Holds ``bands`` (key ``rope.bands``) and builds ``(cos, sin)`` tables for a token grid."""

    def __init__(self, num_bands: int) -> None:
        super().__init__()
        self.bands = nn.Parameter(default_bands(num_bands), requires_grad=False)

    def forward(self, t_cur: int, h: int, w: int, t_prev: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        ang = rope_angles(self.bands, t_cur, h, w, t_prev)
        return ang.cos(), ang.sin()
