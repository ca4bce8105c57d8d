"""WMReward's V-JEPA 2 "surprise": how badly the world model predicts the second half of each window.

Per window of ``window_size`` frames (every ``stride`` frames):
  target = layer_norm(encoder(whole window))[target tokens]           (no affine)
  pred   = layer_norm(predictor(encoder(context frames only), ctx, tgt))
  surprise_w = 1 − mean over target tokens of cos(pred, target) along features
Video surprise = mean (or max) over windows. Lower = more physically plausible.

The model is ours (pipeline/rewards/vjepa2/vit.py, predictor.py), equal to the official V-JEPA 2 code on the
same weights. The context branch never sees the future frames (transformers' one-call masked API
encodes the whole clip before masking, which leaks them). All windows of a clip, and of several
clips, go through the model in micro-batches; ``surprise_differentiable`` is the guidance entry.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from pipeline.rewards.base import NonFiniteSurpriseError, ScoreFailure, read_clip
from pipeline.rewards.vjepa2.model import WorldModel, load_world_model
from pipeline.rewards.vjepa2.preprocess import Layout, as_frame_tensor, preprocess_clip
from pipeline.rewards.vjepa2.windows import subsample_indices, token_split, window_starts

Aggregate = Literal["mean", "max"]
Clip = np.ndarray | torch.Tensor


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

    def record(self) -> dict[str, Any]:
        """What the score stage keeps of a candidate."""
        return {"surprise": self.surprise, "windows": self.window_surprises, "frames_used": self.num_frames_used}


class SurpriseScorer:
    def __init__(
        self,
        model: WorldModel | str | os.PathLike,
        window_size: int = 16,
        context_frames: int = 8,
        stride: int = 2,
        aggregate: Aggregate = "mean",
        max_frames: int | None = None,
        batch_windows: int = 8,
        preprocess_chunk: int = 32,
        allow_tf32: bool = False,
    ) -> None:
        if not isinstance(model, WorldModel):
            model = load_world_model("hf", model)  # a path: a Hugging Face format folder
        if aggregate not in ("mean", "max"):
            raise ValueError(f"aggregate must be 'mean' or 'max', got {aggregate!r}")
        if batch_windows <= 0:
            raise ValueError(f"batch_windows must be positive, got {batch_windows}")
        if max_frames is not None and max_frames < window_size:
            raise ValueError(f"max_frames {max_frames} is smaller than one window of {window_size}")
        self.model = model
        self.crop_size: int = model.img_size
        self.tubelet: int = model.tubelet_size
        self.grid: int = self.crop_size // model.patch_size
        self.window_size = window_size
        self.context_frames = context_frames
        self.stride = stride
        self.aggregate: Aggregate = aggregate
        self.max_frames = max_frames
        self.batch_windows = batch_windows
        self.preprocess_chunk = preprocess_chunk
        self.allow_tf32 = allow_tf32
        self.forwards = 0  # windows through the model (reward forwards; pipeline/compute.py reads it)
        self.backwards = 0  # windows whose surprise carried a gradient back (guidance)
        # Validates context/tubelet/window once, at construction rather than mid-run.
        self.ctx_idx, self.tgt_idx = token_split(window_size, context_frames, self.tubelet, self.grid)
        if len(self.ctx_idx) + len(self.tgt_idx) > model.arch.predictor.num_patches:
            raise ValueError(
                f"window_size {window_size} exceeds the predictor's {model.arch.predictor.num_frames} frames"
            )
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.ctx_idx = self.ctx_idx.to(self.device)
        self.tgt_idx = self.tgt_idx.to(self.device)

    @property
    def settings(self) -> dict[str, Any]:
        src = self.model.source
        return {
            "window_size": self.window_size,
            "context_frames": self.context_frames,
            "stride": self.stride,
            "aggregate": self.aggregate,
            "max_frames": self.max_frames,
            "crop_size": self.crop_size,
            "tubelet_size": self.tubelet,
            "patch_size": self.model.patch_size,
            "variant": src.variant,
            "weights": src.weights,
            "model_path": src.path,
            "dtype": str(self.dtype).removeprefix("torch.") + ("+tf32" if self.allow_tf32 else ""),
            "mask_index": self.model.mask_index,
            "distance": "1-cos(dim=features), LN(no affine) on both sides",
            "preprocess": "square bilinear antialias resize, /255, imagenet mean/std",
        }

    # ---- model passes -------------------------------------------------------------------------

    @contextmanager
    def _precision(self) -> Iterator[None]:
        """TF32 matmuls on CUDA only while this scorer runs (the flag is process-global)."""
        if self.device.type != "cuda":
            yield
            return
        old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = self.allow_tf32
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old

    def predict_targets(self, windows: torch.Tensor) -> torch.Tensor:
        """Layer-normed predictions (B, N_tgt, D) from the context frames of (B, W, 3, S, S) windows.

        The context frames are encoded alone: for a causal split this is token for token the
        official masked encoding (tokens dropped after the tubelet embedding, which is local in
        time, keeping their own RoPE positions), minus the wasted convolution of the future.
        Always under no_grad: the reference keeps the predictor branch out of the guidance graph.
        """
        with torch.no_grad():
            ctx = self.model.encode(windows[:, : self.context_frames].to(self.dtype))
            pred = self.model.predict(ctx, self.ctx_idx, self.tgt_idx).float()
            return F.layer_norm(pred, (pred.shape[-1],))

    def encode_targets(self, windows: torch.Tensor) -> torch.Tensor:
        """Layer-normed full-window encoding at the target tokens, (B, N_tgt, D); grad follows the caller."""
        h = self.model.encode(windows.to(self.dtype))[:, self.tgt_idx].float()
        return F.layer_norm(h, (h.shape[-1],))  # per token, so normalising only the targets is the same

    def _target_surprise(self, windows: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        tgt = self.encode_targets(windows)
        return 1.0 - F.cosine_similarity(pred, tgt, dim=-1).mean(dim=-1)

    def _batch_surprise(self, windows: torch.Tensor, grad: bool, checkpoint_windows: bool) -> torch.Tensor:
        pred = self.predict_targets(windows)
        with torch.set_grad_enabled(grad):
            if grad and checkpoint_windows:
                # Recompute the target encoder in backward instead of holding every window's
                # activations: needed for ViT-g guidance over many windows.
                return checkpoint(self._target_surprise, windows, pred, use_reentrant=False)
            return self._target_surprise(windows, pred)

    def _surprises(
        self, clips: Sequence[torch.Tensor], grad: bool = False, checkpoint_windows: bool = False
    ) -> list[torch.Tensor]:
        """Per-window surprises of preprocessed (T, 3, S, S) clips.

        All windows of all clips go through the model in micro-batches of ``batch_windows``
        (a batch may span clips); ``unfold`` gives the windows as views, so only the windows of
        the current micro-batch are ever copied.
        """
        views = [c.unfold(0, self.window_size, self.stride).movedim(-1, 1) for c in clips]
        pieces = [(i, s) for i, v in enumerate(views) for s in range(len(v))]
        out: list[torch.Tensor] = []
        with self._precision():
            for b in range(0, len(pieces), self.batch_windows):
                chunk = pieces[b : b + self.batch_windows]
                # Consecutive windows of one clip are one slice; a batch spanning clips is a cat.
                runs: list[list[int]] = []  # [clip, first window, end window]
                for i, s in chunk:
                    if runs and runs[-1][0] == i and runs[-1][2] == s:
                        runs[-1][2] += 1
                    else:
                        runs.append([i, s, s + 1])
                wins = torch.cat([views[i][lo:hi] for i, lo, hi in runs])
                self.forwards += len(wins)
                out.append(self._batch_surprise(wins, grad, checkpoint_windows))
        flat = torch.cat(out) if out else torch.zeros(0)
        return list(flat.split([len(v) for v in views]))

    def aggregate_windows(self, per_window: torch.Tensor) -> torch.Tensor:
        """Per-window surprises (..., n) -> per-video surprise (...): mean or max over windows, NaN
        kept (callers that must not pass a NaN on use ``_aggregate``)."""
        return per_window.mean(dim=-1) if self.aggregate == "mean" else per_window.max(dim=-1).values

    def _aggregate(self, per_window: torch.Tensor) -> torch.Tensor:
        if not torch.isfinite(per_window).all():
            bad = [i for i, v in enumerate(per_window.detach().tolist()) if not np.isfinite(v)]
            raise NonFiniteSurpriseError(
                f"non-finite V-JEPA surprise in windows {bad} (of {len(per_window)}); "
                "check the input frames for NaN/inf and the model dtype"
            )
        return per_window.mean() if self.aggregate == "mean" else per_window.max()

    # ---- inputs --------------------------------------------------------------------------------

    def _subsample(self, frames: torch.Tensor) -> torch.Tensor:
        if self.max_frames is None:
            return frames
        idx = subsample_indices(len(frames), self.max_frames)
        return frames[torch.as_tensor(idx, device=frames.device)]

    def prepare(self, frames: Clip, layout: Layout = "auto") -> torch.Tensor:
        """Frames -> subsampled, preprocessed (T, 3, S, S) float32 clip on the model device (no grad).

        Fails before any preprocessing work if the clip is shorter than one window. Preprocessing
        runs in frame chunks on the model device: a 96-frame 720p clip is ~1 GB as one float tensor.
        """
        frames = self._subsample(as_frame_tensor(frames))
        window_starts(len(frames), self.window_size, self.stride)
        with torch.no_grad():
            return torch.cat(
                [
                    preprocess_clip(frames[i : i + self.preprocess_chunk].to(self.device), self.crop_size, layout)
                    for i in range(0, len(frames), self.preprocess_chunk)
                ]
            )

    def _result(self, per_window: torch.Tensor, n: int) -> SurpriseResult:
        return SurpriseResult(
            surprise=float(self._aggregate(per_window)),
            window_surprises=[float(v) for v in per_window],
            num_frames_used=n,
            settings=self.settings,
            window_starts=window_starts(n, self.window_size, self.stride),
        )

    # ---- public entries ------------------------------------------------------------------------

    def score_frames(self, frames: Clip, layout: Layout = "auto") -> SurpriseResult:
        """Score uint8 frames (T,H,W,3) (numpy or torch) or a float tensor on the 0..255 scale."""
        clip = self.prepare(frames, layout)
        with torch.no_grad():
            (per_window,) = self._surprises([clip])
        return self._result(per_window, len(clip))

    def surprises(self, frames: torch.Tensor, layout: Layout = "auto") -> torch.Tensor:
        """Surprise of each of a batch of videos (B, T, H, W, 3) or (B, T, 3, H, W), uint8 or float
        on the 0..255 scale, on any device -> a (B,) float tensor on the model device; a video whose
        surprise is not finite gets NaN (the caller passes it over). All windows of all videos are
        batched together, as in ``score_many``."""
        clips = [self.prepare(video, layout) for video in frames]
        with torch.no_grad():
            per_window = self._surprises(clips)
        return torch.stack([self.aggregate_windows(w) for w in per_window])

    def so_far(self, rows: int) -> SurpriseSoFar:
        """Surprise of ``rows`` videos that grow chunk by chunk (see ``SurpriseSoFar``)."""
        return SurpriseSoFar(self, rows)

    def score_video(self, path: str | os.PathLike) -> SurpriseResult:
        return self.score_many([path])[0]

    def score_many(self, clips: Sequence[Clip | str | os.PathLike], on_error: str = "raise") -> list[Any]:
        """Score several clips (frame arrays or video paths) with the same settings, in order, with
        the windows of all of them batched together.

        ``on_error="record"`` puts a ``ScoreFailure`` in place of a clip that cannot be read, is
        too short or scores non-finite, and goes on with the others; ``"raise"`` raises.
        """
        if on_error not in ("raise", "record"):
            raise ValueError(f"on_error must be 'raise' or 'record', got {on_error!r}")
        results: list[Any] = [None] * len(clips)
        prepared: dict[int, tuple[torch.Tensor, dict]] = {}
        for i, c in enumerate(clips):
            try:
                prepared[i] = self._load(c)
            except Exception as exc:  # noqa: BLE001 - recorded per clip, or re-raised
                if on_error == "raise" or not _expected(exc):
                    raise
                results[i] = ScoreFailure(f"{type(exc).__name__}: {exc}", self.settings)
        with torch.no_grad():
            surprises = self._surprises([clip for clip, _ in prepared.values()])
        for (i, (clip, extra)), per_window in zip(prepared.items(), surprises):
            try:
                res = self._result(per_window, len(clip))
            except NonFiniteSurpriseError as exc:
                if on_error == "raise":
                    raise
                results[i] = ScoreFailure(f"{type(exc).__name__}: {exc}", self.settings)
                continue
            res.settings.update(extra)
            results[i] = res
        return results

    def _load(self, clip: Clip | str | os.PathLike) -> tuple[torch.Tensor, dict]:
        if not isinstance(clip, (str, os.PathLike)):
            return self.prepare(clip), {}
        # All frames are decoded, then subsampled: the frame count comes from the same decoder,
        # so the linspace indices match the reference exactly.
        frames, fps = read_clip(clip)
        extra = {"video": str(Path(clip)), "video_num_frames": int(len(frames)), "video_fps": fps}
        return self.prepare(frames), extra

    def surprise_differentiable(
        self, pixels: torch.Tensor, layout: Layout = "auto", checkpoint_windows: bool = False
    ) -> torch.Tensor:
        """Scalar surprise of float pixels on the 0..255 scale, (T,3,H,W) or (T,H,W,3), with grad.

        Gradient reaches ``pixels`` through the target (full-window) branch only, as in the
        reference. Grad is enabled here even inside an outer no_grad (diffusers pipelines run
        under one). Same preprocessing, windows and value as ``score_frames`` on the same pixels.
        """
        if not torch.is_tensor(pixels) or not pixels.is_floating_point():
            raise TypeError("surprise_differentiable needs a floating point torch tensor (0..255 scale)")
        with torch.enable_grad():
            x = self._subsample(pixels.to(self.device))
            window_starts(len(x), self.window_size, self.stride)
            clip = preprocess_clip(x, self.crop_size, layout)
            (per_window,) = self._surprises([clip], grad=True, checkpoint_windows=checkpoint_windows)
            return self._aggregate(per_window)

    def guidance_surprises(
        self,
        target: torch.Tensor,
        context: torch.Tensor | None = None,
        worst_window: bool = False,
        checkpoint_windows: bool = False,
    ) -> torch.Tensor:
        """(B,) surprises of B clips made of clean ``context`` frames (B, c, H, W, 3), uint8 or
        0..255 floats, no gradient) followed by ``target`` frames (B, t, H', W', 3) on the 0..255
        scale that may require grad (guidance: frames decoded from a clean estimate). Every window
        of each clip counts, aggregated as the scorer does; ``worst_window`` scores all windows
        without grad and keeps the gradient of each clip's worst window only (the memory trick of
        WMReward's Cosmos guidance). The pieces go through ``preprocess_clip``, the scorer's one
        preprocessing, separately (it works frame by frame, so sizes may differ: a downscaled
        decode). A clip shorter than one window raises ValueError."""
        if not torch.is_tensor(target) or not target.is_floating_point():
            raise TypeError("guidance_surprises needs floating point target frames (0..255 scale)")
        with torch.enable_grad():
            clips = preprocess_clip(target.to(self.device), self.crop_size, "THWC")
            if context is not None and context.shape[1]:
                with torch.no_grad():
                    ctx = preprocess_clip(as_frame_tensor(context).to(self.device), self.crop_size, "THWC")
                clips = torch.cat([ctx, clips], dim=1)
            window_starts(clips.shape[1], self.window_size, self.stride)
            if not worst_window:
                per_window = self._surprises(list(clips), grad=True, checkpoint_windows=checkpoint_windows)
                self.backwards += sum(len(w) for w in per_window)
                return torch.stack([self.aggregate_windows(w) for w in per_window])
            with torch.no_grad():
                scores = torch.stack(self._surprises([c.detach() for c in clips]))
            worst = torch.nan_to_num(scores, nan=-torch.inf).argmax(dim=1)
            starts = (worst * self.stride).tolist()
            windows = [c[s : s + self.window_size] for c, s in zip(clips, starts)]
            worst_only = self._surprises(windows, grad=True, checkpoint_windows=checkpoint_windows)  # one each
            self.backwards += len(windows)
            return torch.cat(worst_only)


def _expected(exc: Exception) -> bool:
    """Failures that belong to one clip (bad file, too short, bad frames), not to the scorer."""
    from pipeline.video_io import VideoError

    return isinstance(exc, (VideoError, ValueError, TypeError, OSError))


class SurpriseSoFar:
    """The surprise of a batch of videos that grow chunk by chunk (a search scoring the video so
    far at every chunk boundary): :meth:`extend` preprocesses only the new frames and computes only
    the windows they complete; earlier windows are kept per video, and :meth:`select_rows`
    re-indexes them with the candidates. At every length the value equals ``score_frames`` of the
    frames so far (windows are regular: a shorter video's windows are the first windows of the
    longer one). ``max_frames`` subsampling depends on the final length, so it is refused here."""

    def __init__(self, scorer: SurpriseScorer, rows: int):
        if scorer.max_frames is not None:
            raise ValueError(
                "scoring a video as it grows needs reward.max_frames=null: a uniform subsample of "
                "the final video is not known before its last frame"
            )
        self.scorer = scorer
        S = scorer.crop_size
        self.tail = torch.zeros(rows, 0, 3, S, S, device=scorer.device)  # frames future windows need
        self.tail_start = 0  # absolute index of the tail's first frame: the next window's start
        self.frames_seen = 0
        self.windows = torch.zeros(rows, 0, device=scorer.device)  # per-window surprises so far

    @property
    def rows(self) -> int:
        return int(self.tail.shape[0])

    def extend(self, frames: torch.Tensor, layout: Layout = "auto") -> torch.Tensor:
        """Append (B, t, ...) new frames (uint8 or 0..255 floats) to every video; returns the (B,)
        surprise of the videos so far (NaN while they are shorter than one window)."""
        sc = self.scorer
        if frames.shape[0] != self.rows:
            raise ValueError(f"{frames.shape[0]} videos given, {self.rows} in flight")
        with torch.no_grad():
            new = (
                torch.stack([preprocess_clip(v.to(sc.device), sc.crop_size, layout) for v in frames])
                if frames.shape[1]
                else self.tail[:, :0]
            )
        self.tail = torch.cat([self.tail, new], dim=1)
        self.frames_seen += int(frames.shape[1])
        if self.tail.shape[1] >= sc.window_size:
            with torch.no_grad():
                per_window = sc._surprises(list(self.tail))
            count = len(per_window[0])
            self.windows = torch.cat([self.windows, torch.stack(per_window)], dim=1)
            drop = count * sc.stride  # frames no later window starts in
            self.tail, self.tail_start = self.tail[:, drop:], self.tail_start + drop
        return self.value()

    def value(self) -> torch.Tensor:
        if self.windows.shape[1] == 0:
            return torch.full((self.rows,), float("nan"), device=self.windows.device)
        return self.scorer.aggregate_windows(self.windows)

    def select_rows(self, rows: Sequence[int]) -> None:
        """Row b now holds what row ``rows[b]`` held (the candidates a search kept or duplicated)."""
        idx = torch.as_tensor([int(r) for r in rows], device=self.tail.device)
        self.tail, self.windows = self.tail[idx], self.windows[idx]
