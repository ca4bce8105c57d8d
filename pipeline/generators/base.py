"""Engine-agnostic video generator interface.

A generator turns a list of :class:`GenerationRequest` (prompt + condition image
+ seed) into one uint8 ``T x H x W x 3`` RGB video per request, deterministically
by seed.  Implementations batch several candidates of the same prompt/image
into one model call; each candidate must equal the single run with its seed
(up to floating point noise).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from omegaconf import MISSING

from pipeline.errors import PipelineError
from pipeline.fields import above, at_least, device_name, operational, setting


@dataclass
class GeneratorConfig:
    """Fields every generator has; engines subclass it with their own knobs."""

    kind: str = MISSING
    checkpoint: str = MISSING
    width: int = setting(MISSING, check=at_least(1))
    height: int = setting(MISSING, check=at_least(1))
    num_frames: int = setting(MISSING, check=at_least(1))
    fps: float = setting(MISSING, check=above(0))
    dtype: str = "float32"  # each engine checks the names it supports (settings_problems)
    device: str = operational("auto", check=device_name)
    batch_size: int = operational(1, check=at_least(1))  # candidates of one prompt per forward


class GeneratorLoadError(PipelineError):
    """The model folder is missing, incomplete or cannot be loaded."""


class GeneratorConfigError(PipelineError, ValueError):
    """Invalid generator settings (frame count, size, dtype, ...)."""


@dataclass(frozen=True, eq=False)
class GenerationRequest:
    """One candidate to generate.

    ``condition`` is a uint8 ``H x W x 3`` RGB image already at the generator's
    ``height`` x ``width``.  An empty ``negative_prompt`` means "use the
    generator's default negative prompt".
    """

    prompt: str
    condition: np.ndarray | None  # (H, W, 3) image, (T, H, W, 3) clip, or None (text only)
    seed: int
    negative_prompt: str = ""


@dataclass
class StepInfo:
    """Passed to ``on_step`` hooks after each denoising step.

    ``latents`` is the batch of latents *after* the scheduler step, shape
    ``(B, C, T', H', W')``, one row per entry of ``seeds``/``request_indices``.
    A hook returns ``None`` (keep) or a tensor of the same shape that replaces
    the latents for the remaining steps.
    """

    step: int
    num_steps: int
    timestep: float
    latents: Any  # torch.Tensor (kept untyped so this module does not import torch)
    seeds: tuple[int, ...] = ()
    request_indices: tuple[int, ...] = ()
    prompt: str = ""
    extra: dict = field(default_factory=dict)
    # Chunk-wise engines (MAGI-1) fill these; single-clip engines leave the defaults.
    # ``latents`` is then the whole latent video (B, C, T, H', W'); the step denoised the chunks
    # ``chunk_ids`` (absolute chunk indices, oldest first) from t ``chunk_t_before`` to ``chunk_t``;
    # ``denoised`` (B, C, len(chunk_ids) * frames_per_chunk, H', W') is the predicted clean latent
    # ``x + (1 - t) * v`` of those chunks (x, t before the step); they span latent frames
    # ``chunk_frames = (start, end)`` of ``latents``.
    chunk_ids: tuple[int, ...] = ()
    chunk_t_before: tuple[float, ...] = ()
    chunk_t: tuple[float, ...] = ()
    denoised: Any = None
    chunk_frames: tuple[int, int] = (0, 0)


StepHook = Callable[[StepInfo], Any | None]


@dataclass
class ChunkInfo:
    """Passed to ``on_chunk`` hooks of chunk-wise engines (MAGI-1) when a chunk is finished.

    ``chunk`` is the output chunk index (0 = first generated chunk; a v2v prefix is not counted)
    of ``num_chunks``; ``latent`` ``(B, C, t, H', W')`` the finished clean chunk (the part that is
    returned), ``latents`` the whole latent video ``(B, C, T, H', W')``. A hook returns ``None``
    (keep), a tensor shaped like ``latents`` (replaces them for the remaining steps), or a
    sequence of ``B`` row indices ``rows``: row ``b`` continues from the state of row ``rows[b]``
    (latents, KV cache and the chunks finished so far), e.g. to keep the best candidate.
    """

    chunk: int
    num_chunks: int
    latent: Any
    latents: Any
    step: int
    seeds: tuple[int, ...] = ()
    request_indices: tuple[int, ...] = ()
    prompt: str = ""
    extra: dict = field(default_factory=dict)


ChunkHook = Callable[[ChunkInfo], Any | None]


class Generator(abc.ABC):
    """Abstract video generator.

    Compute counters, increased by every engine as it works (``pipeline/compute.py`` reads them):
    ``nfe`` generator forwards x rows (a 3-pass CFG step of B rows counts 3B), ``vae_decodes``
    videos or chunks decoded x rows.

    Sessions a search strategy drives (``start(requests)``): ``steppable`` engines offer one whose
    forward steps take a guide (reward guidance); ``chunk_wise`` ones also stop at every finished
    chunk, where rows can be kept, dropped or duplicated (beam search, SMC); ``differentiable_steps``
    ones let a guide recompute a step's velocity with grad (guidance through the model)."""

    kind: str = "abstract"
    steppable: bool = False
    chunk_wise: bool = False
    differentiable_steps: bool = False
    nfe: int = 0
    vae_decodes: int = 0

    @property
    @abc.abstractmethod
    def width(self) -> int: ...

    @property
    @abc.abstractmethod
    def height(self) -> int: ...

    @property
    @abc.abstractmethod
    def frames_out(self) -> int:
        """Frames ``generate`` returns per request for an image condition (``generator.num_frames``
        is what the config asks for; an engine may return more, e.g. whole MAGI-1 chunks)."""

    @property
    @abc.abstractmethod
    def fps(self) -> float: ...

    @abc.abstractmethod
    def generate(self, requests: list[GenerationRequest], on_step: StepHook | None = None) -> list[np.ndarray]:
        """Return one uint8 ``(num_frames, height, width, 3)`` array per request, in order."""

    def close(self) -> None:
        """Release model memory (optional)."""

    # ----------------------------------------------------------------- built from config
    @classmethod
    def from_config(cls, cfg: Any, device: str, mesh: Any = None) -> Generator:
        """The engine for its config dataclass (``generator.*``) on ``device``; ``mesh``: the
        DeviceMesh of a multi-rank replica, dims ``("replica", *replica_dims(cfg))``."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from a config")

    @classmethod
    def missing_checkpoint_files_for(cls, cfg: Any) -> list[str]:
        """What the checkpoint named by ``cfg`` lacks (empty = looks complete); cheap, no model load."""
        return []

    # ----------------------------------------------------------------- checked before any work
    @classmethod
    def settings_problems(cls, cfg: Any) -> list[str]:
        """``generator.KEY=VALUE: why`` for each setting of the engine's config the engine cannot
        run; cheap (config files at most, no weights): called when a command starts."""
        return []

    @classmethod
    def takes_images(cls, cfg: Any) -> bool:
        """Whether the model of ``cfg`` is conditioned on an image (False: text only, e.g. a
        text-to-video checkpoint), known without loading it."""
        return True

    @classmethod
    def planned_frames(cls, cfg: Any, mode: str) -> int | None:
        """Frames each candidate will have for ``mode`` (i2v | v2v | t2v), known without loading
        the model; None when it cannot be told yet (the check then happens after generation)."""
        return None

    @classmethod
    def planned_nfe(cls, cfg: Any, mode: str) -> int | None:
        """NFEs of one candidate (generator passes of one row) for ``mode``, known without loading
        the model; None when the engine cannot tell."""
        return None

    @classmethod
    def replica_dims(cls, cfg: Any) -> dict[str, int]:
        """The parallel dimensions one model copy spreads over, outermost first, with their sizes;
        their product is the ranks of a replica. Empty: every rank holds a whole copy."""
        return {}

    @classmethod
    def layout_problems(cls, cfg: Any) -> list[str]:
        """What keeps ``replica_dims(cfg)`` from splitting the model of ``cfg`` (without loading it)."""
        return []

    @classmethod
    def planned_steps(cls, cfg: Any) -> int | None:
        """Denoising steps from noise to clean (of each chunk, for a chunk-wise engine), known
        without loading the model; None when the engine cannot tell."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- helpers
    def check_request(self, req: GenerationRequest) -> None:
        """Raise ``ValueError`` unless ``req.condition`` is uint8 (height, width, 3)."""
        check_condition(req.condition, self.height, self.width)
        if not isinstance(req.prompt, str):
            raise ValueError(f"prompt must be a str, got {type(req.prompt).__name__}")
        if isinstance(req.seed, bool) or not isinstance(req.seed, (int, np.integer)):
            raise ValueError(f"seed must be an int, got {req.seed!r}")


def check_condition(image: np.ndarray | None, height: int, width: int) -> None:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"condition must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"condition must be uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"condition must be H x W x 3 RGB, got shape {image.shape}")
    if image.shape[:2] != (height, width):
        raise ValueError(
            f"condition is {image.shape[0]}x{image.shape[1]} (HxW) but the generator makes "
            f"{height}x{width}; resize it first"
        )


def session_requests(requests: Sequence[GenerationRequest]) -> list[GenerationRequest]:
    """The rows of a generation session: requests that share one prompt and condition (they
    differ by seed only), else ValueError."""
    requests = list(requests)
    if len(group_requests(requests, len(requests))) != 1:
        raise ValueError("a session's requests must share one prompt and one condition (its rows differ by seed)")
    return requests


def group_requests(requests: Sequence[GenerationRequest], batch_size: int) -> list[list[int]]:
    """Group request indices that share prompt, negative prompt and condition (image, clip or
    none) into chunks of at most ``batch_size`` (first-appearance order)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(requests):
        cond = None if r.condition is None else np.ascontiguousarray(r.condition)
        key = (r.prompt, r.negative_prompt, None if cond is None else (cond.shape, cond.tobytes()))
        groups.setdefault(key, []).append(i)
    chunks: list[list[int]] = []
    for idx in groups.values():
        chunks.extend(idx[j : j + batch_size] for j in range(0, len(idx), batch_size))
    return chunks


def float_frames_to_uint8(frames: np.ndarray) -> np.ndarray:
    """[0, 1] float frames -> uint8 (clip, scale by 255, round half to even)."""
    frames = np.asarray(frames, dtype=np.float32)
    frames = np.nan_to_num(frames, nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)
