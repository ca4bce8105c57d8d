"""``Magi1Generator``: MAGI-1 (official 24B / 4.5B checkpoints, our PyTorch implementation) behind the
engine-agnostic :class:`~pipeline.generators.base.Generator` interface.

* ``GenerationRequest.condition``: a uint8 image ``(H, W, 3)`` -> i2v (the image latent overwrites
  latent frame 0 before every forward), a uint8 clip ``(T, H, W, 3)`` -> v2v (its last 32 frames are
  the prefix: 8 latent frames, one whole clean chunk fills the KV cache, 2 frames are overwritten;
  upstream takes the first 32 frames of its input file -- we continue from the end of the clip), or
  ``None`` -> t2v.
* Output (as upstream): every finished clean chunk is VAE-decoded on its own (tiled, the official
  post-processing) and the frames are concatenated. Frame counts: t2v ``24 * ceil((nf//4)/6)``;
  i2v ``24 * ceil((nf//4 + 1)/6)`` (96 -> 120; the first 4 frames reproduce the image); v2v the
  generated chunks after the prefix (the partial first chunk of 4 latent frames decodes to 13
  frames at 24 fps because the VAE decodes 3-latent-frame tiles and a 1-frame tile gives 1 frame).
  :meth:`output_frames` gives the count per mode; ``num_frames`` is the i2v count.
* DiT, VAE and T5 are loaded once per process (per path/device/dtype) and stay resident; caption
  embeddings are cached per prompt (LRU) by :class:`~.text.MagiTextEncoder`.
* Candidates of one prompt and condition are batched (``batch_size``) into one forward; each uses
  its own seed's CPU noise, so candidate k equals the single run with its seed.
* Hooks: ``on_step(StepInfo)`` after every forward step (``latents`` = the whole latent video,
  ``chunk_ids``, ``chunk_t_before``/``chunk_t``, ``denoised`` = ``x + (1 - t) v``; return a tensor to
  replace the latents) and ``on_chunk(ChunkInfo)`` when a chunk is finished (return None, a latent
  tensor, or row indices to continue every row from a chosen candidate's state).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.dtypes import CANONICAL, dtype_name
from pipeline.model_cache import resident

from ..base import (
    ChunkHook,
    ChunkInfo,
    GenerationRequest,
    Generator,
    GeneratorConfigError,
    GeneratorLoadError,
    StepHook,
    StepInfo,
    group_requests,
    session_requests,
)
from .config import VARIANTS as MAGI_VARIANTS
from .config import MagiConfig, MagiConfigError, load_magi_config, preset
from .spec import Magi1GeneratorConfig

__all__ = ["Magi1Generator", "resolve_magi_config", "V2V_PREFIX_FRAMES"]

V2V_PREFIX_FRAMES = 32  # official prefix_frame (8 latent frames)


def resolve_magi_config(cfg: Magi1GeneratorConfig) -> MagiConfig:
    """The effective :class:`MagiConfig` of a ``Magi1GeneratorConfig``: the official JSON
    (``magi_config``) or the ``variant`` preset, then the pipeline's fields on top (width/height/
    num_frames/fps/steps/distill/text_scale/history_scale). The JSON's ``load``, ``vae_pretrained``
    and ``t5_pretrained`` paths are replaced by ``checkpoint``/``vae_checkpoint``/``t5_checkpoint``."""
    try:
        base = load_magi_config(cfg.magi_config) if cfg.magi_config else preset(cfg.variant)
    except MagiConfigError as e:
        raise GeneratorConfigError(str(e)) from None
    rt: dict[str, Any] = {
        "video_size_w": int(cfg.width),
        "video_size_h": int(cfg.height),
        "num_frames": int(cfg.num_frames),
        "fps": int(round(float(cfg.fps))),
        "load": str(cfg.checkpoint),
        "vae_pretrained": str(cfg.vae_checkpoint),
        "t5_pretrained": str(cfg.t5_checkpoint),
    }
    if float(cfg.fps) != int(round(float(cfg.fps))):
        raise GeneratorConfigError(f"MAGI-1 fps must be an integer (official runtime_config.fps), got {cfg.fps}")
    eng: dict[str, Any] = {}
    if cfg.steps is not None:
        rt["num_steps"] = int(cfg.steps)
    if cfg.distill is not None:
        eng["distill"] = bool(cfg.distill)
        rt["cfg_number"] = 1 if cfg.distill else 3
    guided = [i for i, e in enumerate(base.runtime_config.cfg_t_range) if float(e) < 0.3 - 1e-6]
    if cfg.text_scale is not None:
        ts = list(base.runtime_config.text_scales)
        for i in guided:
            ts[i] = float(cfg.text_scale)
        rt["text_scales"] = tuple(ts)
    if cfg.history_scale is not None:
        ps = list(base.runtime_config.prev_chunk_scales)
        for i in guided:
            ps[i] = float(cfg.history_scale)
        rt["prev_chunk_scales"] = tuple(ps)
    try:
        return base.replace(runtime_config=rt, engine_config=eng).validate()
    except MagiConfigError as e:
        raise GeneratorConfigError(f"MAGI-1 settings: {e}") from None


PREFIX_LATENT_FRAMES = {"t2v": 0, "i2v": 1, "v2v": V2V_PREFIX_FRAMES // 4}


def chunk_latent_lengths(runtime: Any, mode: str, prefix_frames: int | None = None) -> list[int]:
    """Latent frames of every chunk returned for ``mode`` (the prefix's clean chunks are not)."""
    from .sampler import latent_frames

    W = runtime.chunk_width
    tp = PREFIX_LATENT_FRAMES[mode] if prefix_frames is None else int(prefix_frames)
    T = latent_frames(runtime.num_frames, tp, W, runtime.temporal_downsample_factor)
    out = []
    for c in range(tp // W, T // W):
        start = c * W if mode == "i2v" and tp == 1 else max(c * W, tp)
        out.append((c + 1) * W - start)
    return out


class Magi1Generator(Generator):
    """See the module docstring."""

    kind = "magi1"
    accepts_clips = True
    steppable = True
    chunk_wise = True
    differentiable_steps = True  # a guide may recompute the velocity with grad

    # ------------------------------------------------------------------ construction
    @classmethod
    def missing_checkpoint_files_for(cls, cfg: Magi1GeneratorConfig) -> list[str]:
        from .checkpoint import missing_checkpoint_files
        from .text import missing_t5_files
        from .vae import missing_vae_files

        try:
            mc = resolve_magi_config(cfg)
        except GeneratorConfigError as e:
            return [f"invalid MAGI-1 settings: {e}"]
        missing = missing_checkpoint_files(cfg.checkpoint, mc.engine_config.distill, mc.engine_config.fp8_quant)
        missing += missing_vae_files(Path(cfg.vae_checkpoint)) + missing_t5_files(Path(cfg.t5_checkpoint))
        if cfg.special_tokens and not Path(cfg.special_tokens).is_file():
            missing.append(f"{cfg.special_tokens} (special_tokens.npz)")
        return missing

    @classmethod
    def settings_problems(cls, cfg: Magi1GeneratorConfig) -> list[str]:
        """What is wrong with a ``Magi1GeneratorConfig`` before any file is read (one entry per key)."""
        out = []
        if dtype_name(cfg.dtype) is None:
            out.append(f"generator.dtype={cfg.dtype!r} is not one of {list(CANONICAL)}")
        if cfg.width % 16 or cfg.height % 16:
            out.append(
                f"generator.width x generator.height={cfg.width}x{cfg.height}: must be multiples of 16 "
                "(VAE x8, patch 2)"
            )
        if float(cfg.fps) != int(round(float(cfg.fps))):
            out.append(f"generator.fps={cfg.fps}: MAGI-1 needs a whole number of frames per second")
        if out or cfg.variant not in MAGI_VARIANTS:
            return out
        try:
            base = load_magi_config(cfg.magi_config) if cfg.magi_config else preset(cfg.variant)
        except MagiConfigError as e:
            return [f"generator.magi_config={cfg.magi_config}: {e}"]
        window = base.runtime_config.window_size
        if cfg.steps is not None and cfg.steps % window:
            out.append(f"generator.steps={cfg.steps}: must be a multiple of the sampler window ({window})")
            return out
        try:
            resolve_magi_config(cfg)
        except GeneratorConfigError as e:
            out.append(f"generator (MAGI-1 settings): {e}")
        return out

    @classmethod
    def planned_frames(cls, cfg: Magi1GeneratorConfig, mode: str) -> int | None:
        """Frames a candidate will have for ``mode`` (i2v | v2v | t2v), from the settings and the
        VAE's config.json alone; None while the VAE folder is not there to ask."""
        from .vae import read_vae_config, tiled_output_frames

        folder = Path(cfg.vae_checkpoint)
        if not (folder / "config.json").is_file():
            return None
        r = resolve_magi_config(cfg).runtime_config
        factor = read_vae_config(folder).patch_length
        return sum(tiled_output_frames(n, r.fps // 2, factor) for n in chunk_latent_lengths(r, mode))

    @classmethod
    def planned_nfe(cls, cfg: Magi1GeneratorConfig, mode: str) -> int:
        """Passes per forward step (3 with CFG, 1 distilled) x forward steps (steps per window
        stage x window stages), plus the pass that fills the KV cache with a whole v2v prefix chunk."""
        from . import schedule as S
        from .sampler import latent_frames, prefix_chunks

        r = resolve_magi_config(cfg).runtime_config
        tp = PREFIX_LATENT_FRAMES[mode]
        chunks = latent_frames(r.num_frames, tp, r.chunk_width, r.temporal_downsample_factor) // r.chunk_width
        offset = prefix_chunks(tp, r.chunk_width)
        steps = r.num_steps // r.window_size * len(S.window_stages(chunks, r.window_size, offset))
        return (3 if r.cfg_number == 3 else 1) * steps + (1 if offset else 0)

    @classmethod
    def planned_steps(cls, cfg: Magi1GeneratorConfig) -> int | None:
        """Steps of each chunk's schedule; None while the settings do not resolve (reported apart)."""
        try:
            return int(resolve_magi_config(cfg).runtime_config.num_steps)
        except GeneratorConfigError:
            return None

    @classmethod
    def replica_dims(cls, cfg: Magi1GeneratorConfig) -> dict[str, int]:
        """``generator.parallel``: cfg x sp x tp ranks per model copy (``parallelize.Layout``)."""
        from .parallelize import DIMS

        return {d: int(getattr(cfg.parallel, d)) for d in DIMS if int(getattr(cfg.parallel, d)) > 1}

    @classmethod
    def layout_problems(cls, cfg: Magi1GeneratorConfig) -> list[str]:
        """What ``generator.parallel`` cannot split in this model, one line per field."""
        from .memory import tokens_per_chunk
        from .parallelize import Layout

        layout = Layout(**cls.replica_dims(cfg))
        if layout.replica_size == 1:
            return []
        try:
            magi = resolve_magi_config(cfg)
        except GeneratorConfigError:
            return []  # reported by settings_problems
        problems = layout.problems(magi.model_config, magi.runtime_config.cfg_number, tokens_per_chunk(magi))
        return [f"generator.parallel.{why}" for why in problems]

    @classmethod
    def from_config(cls, cfg: Magi1GeneratorConfig, device: str, mesh=None) -> Magi1Generator:
        """From its ``Magi1GeneratorConfig``; ``mesh``: a multi-rank replica's DeviceMesh (dims
        "replica" and those of ``replica_dims``)."""
        return cls(
            resolve_magi_config(cfg),
            mesh=mesh,
            checkpoint=cfg.checkpoint,
            vae_checkpoint=cfg.vae_checkpoint,
            t5_checkpoint=cfg.t5_checkpoint,
            special_tokens=cfg.special_tokens,
            batch_size=cfg.batch_size,
            device=device,
            dtype=cfg.dtype,
        )

    def __init__(
        self,
        magi: MagiConfig,
        *,
        checkpoint: str,
        vae_checkpoint: str,
        t5_checkpoint: str,
        special_tokens: str | None = None,
        batch_size: int = 1,
        device: str = "cpu",
        dtype: str = "float32",
        prompt_cache_size: int = 64,
        mesh=None,
    ) -> None:
        import torch

        from .cfg_parallel import CfgSplit
        from .checkpoint import load_dit
        from .memory import rank_memory
        from .parallelize import Layout
        from .replica_work import ReplicaWork
        from .sampler import SamplerSettings
        from .text import SpecialTokenOptions, SpecialTokens
        from .vae import MagiVAE

        self._torch = torch
        self.magi = magi.validate()
        r = magi.runtime_config
        dname = dtype_name(dtype)
        if dname is None:
            raise GeneratorConfigError(f"unsupported dtype {dtype!r}; use one of {list(CANONICAL)}")
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise GeneratorConfigError(f"batch_size must be >= 1, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.dtype = getattr(torch, dname)
        self.settings = SamplerSettings.from_magi_config(magi)
        self.special_tokens_path = special_tokens
        self.options = SpecialTokenOptions() if special_tokens else SpecialTokenOptions.none()
        self.layout = Layout.of_mesh(mesh) if mesh is not None else Layout()
        split = mesh if self.layout.replica_size > 1 else None
        self.cfg_split = CfgSplit(mesh["cfg"]) if self.layout.cfg > 1 else None
        self.replica = ReplicaWork(mesh) if split is not None else None  # T5 once, VAE tiles dealt out
        self.memory = rank_memory(magi, self.layout, self.dtype.itemsize, self.batch_size)
        if (self.device.type == "cuda" or self.replica is not None) and (self.replica is None or self.replica.is_first):
            print(f"MAGI-1, {self.layout.replica_size} rank(s) per copy ({self.layout}): {self.memory.describe()}")
        if self.device.type == "cuda":
            too_big = self.memory.problem(self.layout, torch.cuda.get_device_properties(self.device).total_memory)
            if too_big:
                raise GeneratorLoadError(too_big)
        try:  # split: each rank reads only its slices of the weights
            self.dit = load_dit(checkpoint, magi, device=self.device, dtype=self.dtype, mesh=split)
        except GeneratorLoadError:
            raise
        except Exception as e:  # noqa: BLE001
            raise GeneratorLoadError(f"cannot load the MAGI-1 DiT from {checkpoint}: {e}") from e
        self.vae = resident(
            ("magi1.vae", str(Path(vae_checkpoint).resolve()), str(self.device), dname, r.fps),
            lambda: MagiVAE.from_folder(
                vae_checkpoint, device=self.device, dtype=self.dtype, fps=r.fps, scale_factor=r.scale_factor
            ),
        )
        t5_dev = torch.device("cpu") if r.t5_device == "cpu" or self.device.type == "cpu" else self.device
        self.special_tokens = SpecialTokens.from_npz(special_tokens) if special_tokens else None
        self.text = None
        if self.replica is None or self.replica.is_first:
            self.text = self._load_text(t5_checkpoint, special_tokens, t5_dev, prompt_cache_size)
        self.num_generate_calls = 0
        self.num_model_calls = 0

    def _load_text(self, t5_checkpoint: str, special_tokens: str | None, t5_dev, prompt_cache_size: int):
        from .text import MagiTextEncoder

        m = self.magi.model_config
        text = resident(
            ("magi1.t5", str(Path(t5_checkpoint).resolve()), str(special_tokens), str(t5_dev), m.caption_max_length),
            lambda: MagiTextEncoder.from_folder(
                t5_checkpoint,
                special_tokens,
                device=t5_dev,
                max_length=m.caption_max_length,
                memory_cache_size=prompt_cache_size,
            ),
        )
        if text.width != m.caption_channels:
            raise GeneratorLoadError(
                f"T5 at {t5_checkpoint} outputs {text.width}-dim captions but the DiT "
                f"expects caption_channels={m.caption_channels}"
            )
        return text

    # ------------------------------------------------------------------ geometry
    @property
    def width(self) -> int:
        return self.magi.runtime_config.video_size_w

    @property
    def height(self) -> int:
        return self.magi.runtime_config.video_size_h

    @property
    def fps(self) -> float:
        return float(self.magi.runtime_config.fps)

    @property
    def frames_out(self) -> int:
        """Frames returned for an image condition (i2v), e.g. 120 for num_frames=96."""
        return self.output_frames("i2v")

    def prefix_latent_frames(self, mode: str) -> int:
        return PREFIX_LATENT_FRAMES[mode]

    def chunk_latent_lengths(self, mode: str, prefix_frames: int | None = None) -> list[int]:
        """Latent frames of every returned chunk."""
        return chunk_latent_lengths(self.magi.runtime_config, mode, prefix_frames)

    def output_frames(self, mode: str = "i2v", prefix_frames: int | None = None) -> int:
        """Video frames :meth:`generate` returns for ``mode`` (t2v | i2v | v2v)."""
        return sum(self.vae.output_frames(n) for n in self.chunk_latent_lengths(mode, prefix_frames))

    # ------------------------------------------------------------------ helpers
    def _check(self, req: GenerationRequest) -> str:
        if isinstance(req.seed, bool) or not isinstance(req.seed, (int, np.integer)):
            raise ValueError(f"seed must be an int, got {req.seed!r}")
        c = req.condition
        if c is None:
            return "t2v"
        if not isinstance(c, np.ndarray) or c.dtype != np.uint8:
            raise ValueError("condition must be a uint8 numpy array (H,W,3) image or (T,H,W,3) clip")
        if c.ndim == 3:
            self.check_request(req)
            return "i2v"
        if c.ndim == 4 and c.shape[1:] == (self.height, self.width, 3) and c.shape[0] >= 4:
            return "v2v"
        raise ValueError(
            f"condition must be ({self.height},{self.width},3) or (T>=4,{self.height},{self.width},3), got {c.shape}"
        )

    def encode_condition(self, condition: np.ndarray | None):
        """Prefix latents (1, 16, Tp, H/8, W/8) (x scale_factor, posterior mode) or None."""
        if condition is None:
            return None
        torch = self._torch
        if condition.ndim == 3:
            return self.vae.encode(condition[None], spread=self.replica).to(torch.float32)
        n = min(V2V_PREFIX_FRAMES, condition.shape[0] // 4 * 4)
        return self.vae.encode(condition[-n:], spread=self.replica).to(torch.float32)

    def decode(self, latent) -> np.ndarray:
        """uint8 (B, T, H, W, 3) frames of DiT latents (B, 16, t, h, w), the official chunk post-processing."""
        return self.decode_frames(latent).cpu().numpy()

    def decode_frames(self, latent):
        """As :meth:`decode`, as a uint8 tensor on the VAE's device (what a reward scores in the loop)."""
        from .vae import latents_to_uint8

        self.vae_decodes += int(latent.shape[0])
        with self._torch.no_grad():
            raw = self.vae.decode(latent.to(self.vae.device), tiled=True, scaled=True, spread=self.replica)
            return latents_to_uint8(raw)

    def decode_pixels(self, latent):
        """As :meth:`decode_frames` but float on the 0..255 scale and differentiable (guidance): the
        same decode and conversion, clamped, not truncated to integers."""
        from .vae import latents_to_pixels

        self.vae_decodes += int(latent.shape[0])
        return latents_to_pixels(self.vae.decode(latent.to(self.vae.device), tiled=True, scaled=True)).float()

    def caption_rows(self, prompt: str, num_chunks: int, clean_chunks: int):
        from .text import caption_rows, null_caption_rows

        embs, masks = self.encode_prompt(prompt)
        null = self.dit.y_embedder.null_caption_embedding.detach().float().cpu()
        te, tm = caption_rows(
            embs,
            masks,
            num_chunks,
            special_tokens=self.special_tokens,
            options=self.options,
            clean_chunks=clean_chunks,
            null_caption_embedding=null,
        )
        ne, nm = null_caption_rows(null, num_chunks, special_tokens=self.special_tokens, options=self.options)
        return te, tm, ne, nm

    def encode_prompt(self, prompt: str):
        """T5 (embeddings, mask) of ``prompt``; in a multi-rank replica encoded by its first rank."""
        mine = None
        if self.text is not None:  # the first rank of a replica, or a replica of one
            mine = self.text.encode(prompt)
            if self.replica is None:
                return mine
            mine = tuple(t.cpu() for t in mine)
        assert self.replica is not None  # only a multi-rank replica's other ranks have no T5
        return self.replica.from_first(mine)

    # ------------------------------------------------------------------ generate
    def generate(
        self, requests: list[GenerationRequest], on_step: StepHook | None = None, on_chunk: ChunkHook | None = None
    ) -> list[np.ndarray]:
        requests = list(requests)
        for r in requests:
            self._check(r)
        out: list[np.ndarray | None] = [None] * len(requests)
        for part in group_requests(requests, self.batch_size):
            for i, v in zip(part, self._run([requests[i] for i in part], part, on_step, on_chunk)):
                out[i] = v
        return out  # type: ignore[return-value]

    def start(self, requests: list[GenerationRequest]):
        """A :class:`~.session.Magi1Session` over ``requests`` (one prompt and condition, one row per
        seed) that a search strategy drives chunk by chunk."""
        from .session import Magi1Session

        requests = session_requests(requests)
        for r in requests:
            self._check(r)
        return Magi1Session(self, requests)

    def prepare_batch(self, reqs):
        """What the sampler needs for requests of one prompt and condition: (mode, prefix latents or
        None, the whole initial noise (B, 16, T, h, w) from each request's seed, caption rows)."""
        from .sampler import draw_noise, latent_frames, prefix_chunks

        torch = self._torch
        r = self.magi.runtime_config
        first = reqs[0]
        mode = self._check(first)
        prefix = self.encode_condition(first.condition)
        tp = 0 if prefix is None else int(prefix.shape[2])
        T = latent_frames(r.num_frames, tp, r.chunk_width, r.temporal_downsample_factor)
        h, w = self.height // 8, self.width // 8
        noise = torch.cat([draw_noise(int(q.seed), (1, 16, T, h, w)) for q in reqs])
        captions = self.caption_rows(first.prompt, T // r.chunk_width, prefix_chunks(tp, r.chunk_width))
        return mode, prefix, noise, captions

    def _run(self, reqs, indices, on_step, on_chunk) -> list[np.ndarray]:
        from .sampler import sample

        first = reqs[0]
        mode, prefix, noise, (te, tm, ne, nm) = self.prepare_batch(reqs)
        tp = 0 if prefix is None else int(prefix.shape[2])
        seeds = tuple(int(q.seed) for q in reqs)
        common = dict(seeds=seeds, request_indices=tuple(indices), prompt=first.prompt)

        step_cb = chunk_cb = None
        if on_step is not None:

            def step_cb(d):
                return on_step(
                    StepInfo(
                        step=d["step"],
                        num_steps=d["num_steps"],
                        timestep=d["chunk_t_before"][0],
                        latents=d["latents"],
                        chunk_ids=d["chunk_ids"],
                        chunk_t_before=d["chunk_t_before"],
                        chunk_t=d["chunk_t"],
                        denoised=d["denoised"],
                        chunk_frames=d["chunk_frames"],
                        extra={"mode": mode},
                        **common,
                    )
                )

        if on_chunk is not None:

            def chunk_cb(d):
                return on_chunk(
                    ChunkInfo(
                        chunk=d["chunk"],
                        num_chunks=d["num_chunks"],
                        latent=d["latent"],
                        latents=d["latents"],
                        step=d["step"],
                        extra={"mode": mode},
                        **common,
                    )
                )

        res = sample(
            self.dit,
            self.settings,
            noise,
            te,
            tm,
            ne,
            nm,
            prefix,
            on_step=step_cb,
            on_chunk=chunk_cb,
            device=self.device,
            cfg_split=self.cfg_split,
        )
        self.num_generate_calls += 1
        self.num_model_calls += res.model_calls
        self.nfe += res.nfe
        return self.videos_from_chunks([self.decode(c) for c in res.chunks], mode, tp)

    def videos_from_chunks(self, frames: list[np.ndarray], mode: str, prefix_frames: int) -> list[np.ndarray]:
        """Decoded chunks, each (B, f, H, W, 3), as one (T, H, W, 3) video per row, checked
        against the frame count the geometry promises for ``mode``."""
        video = np.concatenate(frames, axis=1)
        expected = self.output_frames(mode, prefix_frames)
        if video.shape[1] != expected:  # pragma: no cover - guarded by the geometry helpers
            raise RuntimeError(f"MAGI-1 returned {video.shape[1]} frames, expected {expected}")
        return [np.ascontiguousarray(v) for v in video]

    def close(self) -> None:
        """Models stay resident for the process (shared by every generator built on the same paths)."""
