"""The default velocity-field adapter (``adapter.py`` loads it by name from an adapter folder)."""

from __future__ import annotations

import math

import torch
from torch import nn


class VelocityAdapter(nn.Module):
    """A per-position MLP over the model input, shifted by embeddings of t and of the mean text
    token; its output layer starts at zero, so an untrained adapter changes nothing."""

    def __init__(self, in_channels: int, out_channels: int, text_dim: int, hidden: int = 64, time_dim: int = 32):
        super().__init__()
        self.time_dim = time_dim
        self.inp = nn.Conv3d(in_channels, hidden, 1)
        self.time = nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.text = nn.Linear(text_dim, hidden)
        self.out = nn.Conv3d(hidden, out_channels, 1)
        with torch.no_grad():
            self.out.weight.zero_()
            self.out.bias.zero_()  # type: ignore[union-attr]  # Conv3d has a bias unless told not to

    def timestep_embedding(self, t: torch.Tensor) -> torch.Tensor:
        half = self.time_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        angles = t.float()[:, None] * freqs[None]
        return torch.cat([angles.cos(), angles.sin()], dim=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        dtype = self.inp.weight.dtype
        h = self.inp(x.to(dtype))
        h = h + self.time(self.timestep_embedding(t).to(dtype))[:, :, None, None, None]
        h = h + self.text(text.to(dtype).mean(dim=1))[:, :, None, None, None]
        return self.out(nn.functional.silu(h))
