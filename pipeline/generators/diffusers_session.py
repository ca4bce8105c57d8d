"""A diffusers-engine generation (Wan, CogVideoX) driven as a session (the shape of
``magi1/session.py``) for a strategy that acts inside the denoising steps (reward guidance). These
engines make a video in one piece, so the only boundary is the end: ``advance_to_chunk_boundary(guide)``
runs every step, with the guide given each one, and returns the decoded frames of the whole video;
rows cannot branch.

The guide sees each step through the scheduler: before ``scheduler.step`` it gets the latents and
the prediction turned into the sampler's convention (t = 1 clean, clean estimate x + (1 - t) v;
each engine's ``_step_state``); the latents it returns are what the scheduler steps from, with the
prediction already made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .base import GenerationRequest
    from .diffusers_video import DiffusersVideoGenerator


class DiffusersSession:
    chunk_offset = 0
    can_branch = False

    def __init__(self, engine: DiffusersVideoGenerator, requests: Sequence[GenerationRequest]):
        self.engine, self.requests = engine, list(requests)
        self.num_steps = engine.num_inference_steps
        self._videos: list[np.ndarray] | None = None

    @property
    def rows(self) -> int:
        return len(self.requests)

    @property
    def done(self) -> bool:
        return self._videos is not None

    def advance_to_chunk_boundary(self, guide=None) -> torch.Tensor | None:
        """The whole generation; its frames (B, T, H, W, 3) uint8, or None once done."""
        if self._videos is not None:
            return None
        self._videos = self.engine.run_batch(self.requests, guide=guide)
        return torch.from_numpy(np.stack(self._videos))

    def recent_frames(self, count: int) -> None:
        """No frame is finished before the end: guidance has no clean context."""
        return None

    def set_gradient_checkpointing(self, on: bool) -> None:
        """Recompute the VAE decoder's blocks in backward (guidance memory), where diffusers can."""
        vae = self.engine.pipe.vae
        if getattr(vae, "_supports_gradient_checkpointing", False):
            vae.enable_gradient_checkpointing() if on else vae.disable_gradient_checkpointing()

    def decode_pixels(self, latent: torch.Tensor) -> torch.Tensor:
        return self.engine.decode_pixels(latent)

    def videos(self) -> list[np.ndarray]:
        self.advance_to_chunk_boundary()
        assert self._videos is not None
        return self._videos
