"""A MAGI-1 generation a search strategy drives chunk by chunk: the sampling session of
``sampler.py`` plus the decoded frames of every finished chunk, kept per row.

    session = engine.start(requests)            # one prompt and condition, one row per seed
    while (frames := session.advance_to_chunk_boundary()) is not None:
        ...                                     # frames: (B, 24, H, W, 3) uint8 of the new chunk
        session.select_rows(rows, fresh_noise)  # keep, drop or duplicate candidates
    videos = session.videos()

Driving it straight to the end gives exactly what ``Magi1Generator.generate`` returns: the same
sampler steps, and every finished chunk decoded on its own, as upstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from .sampler import Guide, SamplingSession

if TYPE_CHECKING:
    from ..base import GenerationRequest
    from .engine import Magi1Generator


class Magi1Session:
    def __init__(self, engine: Magi1Generator, requests: Sequence[GenerationRequest]):
        self.engine = engine
        self.mode, prefix, noise, (te, tm, ne, nm) = engine.prepare_batch(list(requests))
        self.prefix_frames = 0 if prefix is None else int(prefix.shape[2])
        self.sampling = SamplingSession(
            engine.dit, engine.settings, noise, te, tm, ne, nm, prefix, device=engine.device, cfg_split=engine.cfg_split
        )
        self.origins = list(range(len(requests)))  # the request each row descends from
        self.frames: list[torch.Tensor] = []  # decoded finished chunks, each (B, f, H, W, 3) uint8
        self._counted = 0  # of the sampling session's NFEs, those added to the engine's counter

    @property
    def rows(self) -> int:
        return self.sampling.rows

    @property
    def done(self) -> bool:
        return self.sampling.done

    @property
    def can_branch(self) -> bool:
        """Whether duplicated rows can still diverge: some chunk has not been reached by any step
        (MAGI-1 is causal across chunks, so the chunks already in the window are fixed by their
        rows' state and would continue identically)."""
        return bool(self.sampling.untouched_chunks)

    @property
    def num_steps(self) -> int:
        """Steps of one chunk's schedule (noise to clean)."""
        return self.sampling.settings.num_steps

    @property
    def chunk_offset(self) -> int:
        """Whole clean prefix chunks (v2v): the sampler's chunk ids minus this are output chunks."""
        return self.sampling.offset

    @property
    def chunks_total(self) -> int:
        return self.sampling.chunk_num - self.sampling.offset

    def _count(self) -> None:
        self.engine.nfe += self.sampling.nfe - self._counted
        self._counted = self.sampling.nfe

    def advance_to_chunk_boundary(self, guide: Guide | None = None) -> torch.Tensor | None:
        """Steps until a chunk is finished; its decoded frames (B, f, H, W, 3) uint8 on the VAE's
        device, or None when the session had nothing left to finish. ``guide`` is given every
        step (``SamplingSession.step``)."""
        while not self.done:
            info = self.sampling.step(guide)
            self._count()
            if info["finished_chunk"] is not None:
                self.sampling.commit()
                new = self.engine.decode_frames(self.sampling.finished[-1])
                self.frames.append(new)
                return new
        return None

    def recent_frames(self, count: int) -> torch.Tensor | None:
        """The last ``count`` decoded frames of the finished chunks, (B, <=count, H, W, 3) uint8
        (what guidance takes as the clean context of the chunk it guides), or None before any."""
        if not self.frames or count <= 0:
            return None
        return torch.cat(self.frames, dim=1)[:, -count:]

    def decode_pixels(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, 16, t, h, w) latents of one chunk -> float frames (B, T, H, W, 3) on the 0..255 scale,
        differentiable: the finished chunks' decode and conversion without the final rounding."""
        return self.engine.decode_pixels(latent)

    def set_gradient_checkpointing(self, on: bool) -> None:
        """Recompute the DiT's blocks and the VAE's in backward (guidance memory)."""
        self.engine.dit.gradient_checkpointing = bool(on)
        self.engine.vae.gradient_checkpointing = bool(on)

    def select_rows(self, rows: Sequence[int], fresh_noise: dict[int, int] | None = None) -> None:
        """Row b continues from row ``rows[b]`` (see ``SamplingSession.select_rows``); the decoded
        frames follow their rows."""
        self.sampling.select_rows(rows, fresh_noise)
        idx = torch.as_tensor([int(r) for r in rows])
        self.frames = [f[idx.to(f.device)] for f in self.frames]
        self.origins = [self.origins[int(r)] for r in rows]

    def videos(self) -> list[np.ndarray]:
        """Run to the end; one uint8 (T, H, W, 3) video per row."""
        while self.advance_to_chunk_boundary() is not None:
            pass
        return self.engine.videos_from_chunks([f.cpu().numpy() for f in self.frames], self.mode, self.prefix_frames)
