"""WMReward's V-JEPA 2 "surprise": how badly the world model predicts the second half of each window.

Per window of ``window_size`` frames (every ``stride`` frames):
  target = layer_norm(encoder(whole window))[target tokens]           (no affine)
  pred   = layer_norm(predictor(encoder(context frames only), ctx, tgt))
  surprise_w = 1 − mean over target tokens of cos(pred, target) along features
Video surprise = mean (or max) over windows. Lower = more physically plausible.

The context is encoded from the context frames alone because the transformers one-call masked
API encodes the whole clip before masking, which lets future frames leak into the context.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from pipeline.reward.model import load_vjepa2
from pipeline.reward.preprocess import Layout, as_frame_tensor, preprocess_clip
from pipeline.reward.windows import subsample_indices, token_split, window_starts

Aggregate = Literal["mean", "max"]
Clip = np.ndarray | torch.Tensor


class NonFiniteSurpriseError(FloatingPointError):
    """A surprise came out NaN/inf: selecting by it would silently pick an arbitrary candidate."""


@dataclass(frozen=True)
class SurpriseResult:
    surprise: float
    window_surprises: list[float]
    num_frames_used: int  # frames after max_frames subsampling, i.e. what the windows slide over
    settings: dict[str, Any]
    window_starts: list[int] = field(default_factory=list)

    @property
    def reward(self) -> float:
        """WMReward's "similarity", 1 − surprise (higher = better)."""
        return 1.0 - self.surprise


class SurpriseScorer:
    def __init__(
        self,
        model: torch.nn.Module | str | os.PathLike,
        window_size: int = 16,
        context_frames: int = 8,
        stride: int = 2,
        aggregate: Aggregate = "mean",
        max_frames: int | None = None,
        batch_windows: int = 8,
        preprocess_chunk: int = 32,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            model = load_vjepa2(model)
        if aggregate not in ("mean", "max"):
            raise ValueError(f"aggregate must be 'mean' or 'max', got {aggregate!r}")
        if batch_windows <= 0:
            raise ValueError(f"batch_windows must be positive, got {batch_windows}")
        if max_frames is not None and max_frames < window_size:
            raise ValueError(f"max_frames {max_frames} is smaller than one window of {window_size}")
        self.model = model
        cfg = model.config
        self.crop_size: int = int(cfg.crop_size)
        self.tubelet: int = int(cfg.tubelet_size)
        self.grid: int = self.crop_size // int(cfg.patch_size)
        self.window_size = window_size
        self.context_frames = context_frames
        self.stride = stride
        self.aggregate: Aggregate = aggregate
        self.max_frames = max_frames
        self.batch_windows = batch_windows
        self.preprocess_chunk = preprocess_chunk
        # Validates context/tubelet/window once, at construction rather than mid-run.
        self.ctx_idx, self.tgt_idx = token_split(window_size, context_frames, self.tubelet, self.grid)
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.ctx_idx = self.ctx_idx.to(self.device)
        self.tgt_idx = self.tgt_idx.to(self.device)

    @property
    def settings(self) -> dict[str, Any]:
        return {
            "window_size": self.window_size,
            "context_frames": self.context_frames,
            "stride": self.stride,
            "aggregate": self.aggregate,
            "max_frames": self.max_frames,
            "crop_size": self.crop_size,
            "tubelet_size": self.tubelet,
            "patch_size": int(self.model.config.patch_size),
            "model_path": str(getattr(self.model, "name_or_path", "") or ""),
            "dtype": str(self.dtype).removeprefix("torch."),
            "distance": "1-cos(dim=features), LN(no affine) on both sides",
            "preprocess": "square bilinear antialias resize, /255, imagenet mean/std",
        }

    # ---- model passes -------------------------------------------------------------------------

    def predict_targets(self, windows: torch.Tensor) -> torch.Tensor:
        """Layer-normed predictions (B, N_tgt, D) from the context frames of (B, W, 3, S, S) windows.

        Always under no_grad: the reference keeps the predictor branch out of the guidance graph.
        """
        b = windows.shape[0]
        with torch.no_grad():
            ctx = self.model.encoder(pixel_values_videos=windows[:, : self.context_frames]).last_hidden_state
            pred = self.model.predictor(
                encoder_hidden_states=ctx,
                # ctx already holds only context tokens, so this gather is the identity.
                context_mask=[self.ctx_idx.expand(b, -1)],
                target_mask=[self.tgt_idx.expand(b, -1)],
            ).last_hidden_state
            return F.layer_norm(pred.float(), (pred.shape[-1],))

    def encode_targets(self, windows: torch.Tensor) -> torch.Tensor:
        """Layer-normed full-window encoding at the target tokens, (B, N_tgt, D); grad follows the caller."""
        h = self.model.encoder(pixel_values_videos=windows).last_hidden_state.float()
        return F.layer_norm(h, (h.shape[-1],))[:, self.tgt_idx]

    def _target_surprise(self, windows: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        tgt = self.encode_targets(windows)
        return 1.0 - F.cosine_similarity(pred, tgt, dim=-1).mean(dim=-1)

    def _window_surprises(self, clip: torch.Tensor, grad: bool, checkpoint_windows: bool = False) -> torch.Tensor:
        """(W,) surprises of a preprocessed (T, 3, S, S) clip, windows in micro-batches."""
        starts = window_starts(clip.shape[0], self.window_size, self.stride)
        # unfold gives views (no copy) of all windows: (nW, 3, S, S, W) -> (nW, W, 3, S, S).
        all_windows = clip.unfold(0, self.window_size, self.stride).movedim(-1, 1)
        assert all_windows.shape[0] == len(starts)
        out = []
        for i in range(0, len(starts), self.batch_windows):
            wins = all_windows[i : i + self.batch_windows].to(self.dtype)
            pred = self.predict_targets(wins)
            with torch.set_grad_enabled(grad):
                if grad and checkpoint_windows:
                    # Recompute the target encoder in backward instead of holding every
                    # window's activations: needed for ViT-g guidance over many windows.
                    out.append(checkpoint(self._target_surprise, wins, pred, use_reentrant=False))
                else:
                    out.append(self._target_surprise(wins, pred))
        return torch.cat(out)

    def _aggregate(self, per_window: torch.Tensor) -> torch.Tensor:
        if not torch.isfinite(per_window).all():
            bad = [i for i, v in enumerate(per_window.detach().tolist()) if not np.isfinite(v)]
            raise NonFiniteSurpriseError(
                f"non-finite V-JEPA surprise in windows {bad} (of {len(per_window)}); "
                "check the input frames for NaN/inf and the model dtype"
            )
        return per_window.mean() if self.aggregate == "mean" else per_window.max()

    # ---- public entries ------------------------------------------------------------------------

    def _subsample(self, frames: torch.Tensor) -> torch.Tensor:
        if self.max_frames is None:
            return frames
        idx = subsample_indices(len(frames), self.max_frames)
        return frames[torch.as_tensor(idx, device=frames.device)]

    def score_frames(self, frames: Clip, layout: Layout = "auto") -> SurpriseResult:
        """Score uint8 frames (T,H,W,3) (numpy or torch) or a float tensor on the 0..255 scale."""
        frames = self._subsample(as_frame_tensor(frames))
        n = len(frames)
        window_starts(n, self.window_size, self.stride)  # fail before any preprocessing work
        with torch.no_grad():
            # Preprocess in frame chunks on the model device: a 96-frame 720p clip would be ~1 GB
            # as one float tensor.
            clip = torch.cat([
                preprocess_clip(frames[i : i + self.preprocess_chunk].to(self.device), self.crop_size, layout)
                for i in range(0, n, self.preprocess_chunk)
            ])
            per_window = self._window_surprises(clip, grad=False)
            total = self._aggregate(per_window)
        return SurpriseResult(
            surprise=float(total),
            window_surprises=[float(v) for v in per_window],
            num_frames_used=n,
            settings=self.settings,
            window_starts=window_starts(n, self.window_size, self.stride),
        )

    def score_video(self, path: str | os.PathLike) -> SurpriseResult:
        from pipeline.video_io import read_video

        # All frames are decoded, then subsampled: the frame count comes from the same decoder,
        # so the linspace indices match the reference exactly.
        frames, fps = read_video(path)
        res = self.score_frames(frames)
        res.settings.update(video=str(Path(path)), video_num_frames=int(len(frames)), video_fps=fps)
        return res

    def score_many(self, clips: Sequence[Clip | str | os.PathLike]) -> list[SurpriseResult]:
        """Score several clips (frame arrays or video paths) with the same settings, in order."""
        return [
            self.score_video(c) if isinstance(c, (str, os.PathLike)) else self.score_frames(c) for c in clips
        ]

    def surprise_differentiable(
        self, pixels: torch.Tensor, layout: Layout = "auto", checkpoint_windows: bool = False
    ) -> torch.Tensor:
        """Scalar surprise of float pixels on the 0..255 scale, (T,3,H,W) or (T,H,W,3), with grad.

        Gradient reaches ``pixels`` through the target (full-window) branch only, as in the
        reference. Grad is enabled here even inside an outer no_grad (diffusers pipelines run
        under one). Same value as ``score_frames`` on the same pixels.
        """
        if not torch.is_tensor(pixels) or not pixels.is_floating_point():
            raise TypeError("surprise_differentiable needs a floating point torch tensor (0..255 scale)")
        with torch.enable_grad():
            x = self._subsample(pixels.to(self.device))
            clip = preprocess_clip(x, self.crop_size, layout)
            per_window = self._window_surprises(clip, grad=True, checkpoint_windows=checkpoint_windows)
            return self._aggregate(per_window)
