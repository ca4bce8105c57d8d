"""The WMReward guidance update, applied inside a generation session's forward steps.

At a guided step the chosen chunks' clean estimate x-hat = x + (1 - t) v (velocity held fixed, or
recomputed with grad through the generator: ``search.gradient=model``) is decoded by the VAE with
its graph kept, the clip "most recent clean frames (context) + decoded
target" is scored by the reward's differentiable entry (the scorer's own preprocessing), and each
candidate's latents take one normalised step down the gradient,

    x <- x - scale * |x| / |g| * g        (norms per candidate, over the chunks guided),

before the Euler step. With scale 0 the step is exactly zero, so the video is the unguided one
bit for bit (the regression of WMReward issue #8 is that a scale > 0 gave that too). A candidate
whose surprise is not finite is left unmoved at that step.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from pipeline.rewards.base import InLoopScorer

from ..base import json_number
from .steps import updates_per_step


class RewardGuide:
    """Callable a session calls at every forward step (``SamplingSession.step(guide=...)``)."""

    def __init__(self, cfg: Any, session: Any, scorer: InLoopScorer, num_steps: int, chunk_offset: int = 0):
        self.cfg, self.session, self.scorer = cfg, session, scorer
        self.updates = updates_per_step(cfg, num_steps)
        self.context = scorer.context_frames if cfg.context_frames is None else int(cfg.context_frames)
        self.chunk_offset = chunk_offset
        self.trace: list[dict[str, Any]] = []
        self.seconds = 0.0  # in the guide: decodes, reward forwards and backwards, updates

    def _decode(self, xhat: torch.Tensor) -> torch.Tensor:
        s = float(self.cfg.decode_scale)
        if s < 1:
            h, w = xhat.shape[-2:]
            size = (xhat.shape[2], max(1, round(h * s)), max(1, round(w * s)))
            xhat = F.interpolate(xhat, size=size, mode="trilinear", align_corners=False)
        return self.session.decode_pixels(xhat)

    def __call__(self, state) -> torch.Tensor | None:
        step = state.chunk_steps[0]
        updates = self.updates[step] if state.step % self.cfg.frequency == 0 else 0
        if not updates:
            return None
        started = time.perf_counter()
        try:
            return self._update(state, step, updates)
        finally:
            self.seconds += time.perf_counter() - started

    def _update(self, state, step: int, updates: int) -> torch.Tensor:
        chunks = [0] if self.cfg.chunks == "nearest_clean" else list(range(len(state.chunk_ids)))
        context = self.session.recent_frames(self.context)
        x = state.x.clone()
        for _ in range(updates):
            parts = [x[:, :, state.chunk(j)].detach().requires_grad_(True) for j in chunks]
            with torch.enable_grad():
                estimates = self._clean_estimates(state, x, chunks, parts)
                pixels = torch.cat([self._decode(e) for e in estimates], dim=1)
                surprise = self.scorer.guidance_surprises(
                    pixels, context, worst_window=self.cfg.worst_window, checkpoint_windows=self.cfg.checkpointing
                )
                ok = torch.isfinite(surprise)
                if not bool(ok.any()):
                    self._record(state, step, surprise, None)
                    break
                grads = torch.autograd.grad(surprise[ok].sum(), parts)
            flat_x = torch.cat([p.detach().flatten(1) for p in parts], dim=1)
            flat_g = torch.cat([g.flatten(1) for g in grads], dim=1)
            ok = ok.to(flat_g.device) & torch.isfinite(flat_g).all(dim=1)
            size = self.cfg.scale * flat_x.norm(dim=1) / (flat_g.norm(dim=1) + 1e-8)
            size = torch.where(ok, size, torch.zeros_like(size)).view(-1, 1, 1, 1, 1)
            for j, p, g in zip(chunks, parts, grads):
                x[:, :, state.chunk(j)] = p.detach() - size * torch.nan_to_num(g)
            self._record(state, step, surprise, size.flatten())
        return x

    def _clean_estimates(self, state, x: torch.Tensor, chunks: list[int], parts: list[torch.Tensor]):
        """x-hat of each guided chunk from its latents ``parts`` (which require grad)."""
        if self.cfg.gradient == "clean_estimate":
            return [state.clean_estimate(j, p) for j, p in zip(chunks, parts)]
        if state.velocity is None:
            raise RuntimeError("this generator cannot recompute its velocity with grad (search.gradient=model)")
        pieces = [x[:, :, state.chunk(j)].detach() for j in range(len(state.chunk_ids))]
        for j, p in zip(chunks, parts):
            pieces[j] = p
        v = state.velocity(torch.cat(pieces, dim=2))
        return [p + (1 - float(state.t[j])) * v[:, :, state.chunk(j)] for j, p in zip(chunks, parts)]

    def _record(self, state, step: int, surprise: torch.Tensor, size: torch.Tensor | None) -> None:
        values = surprise.detach().double().cpu().tolist()
        self.trace.append(
            {
                "guided_step": state.step,
                "chunk": state.chunk_ids[0] - self.chunk_offset,
                "chunk_step": step,
                "surprise": [json_number(v) for v in values],
                "step_size": None if size is None else [float(v) for v in size.double().cpu()],
            }
        )
