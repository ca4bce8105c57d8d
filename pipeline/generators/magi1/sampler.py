"""MAGI-1 chunk-wise autoregressive sampler (the official ``SampleTransport`` + ``forward_dispatcher``
conventions, re-implemented on :class:`~.dit.MagiDiT`).

* The latent ``(B, 16, T, H, W)`` is ``T / chunk_width`` chunks of ``chunk_width`` (6) latent frames.
  ``window_size`` (4) chunks are in flight at staggered schedule stages (``schedule.window_stages``);
  each forward step advances every chunk of the window by one Euler step ``x += v * (t_next - t)``
  on its own t (``schedule.t_grid``; t = 0 noise, 1 clean).
* KV cache of finished chunks: on the first step of a window stage after the first, the chunk that
  has just finished is prepended at ``clean_t`` with a null caption row and ``update_kv_cache`` so
  its clean K/V land in its cache slot; per-chunk key ranges come from ``schedule.chunk_kv_ranges``.
* Base models (``cfg_number`` 3): three passes per step -- text + history (no cache write), null
  caption + history (writes the cache), and every denoised chunk alone without history -- combined
  per chunk as ``(1-p)*uncond + (p-s)*cond_pre + s*cond_pre_text`` with ``(p, s) =
  schedule.cfg_scales(t)``.
* Distill models (``cfg_number`` 1): one pass with text (writes the cache) plus ``distill_dt``; when
  the oldest denoised chunk's t exceeds ``distill_nearly_clean_chunk_threshold`` it is appended once
  more without history and blended ``prev_chunks_scale * with + (1 - prev_chunks_scale) * without``.
* i2v / v2v: ``prefix`` latents ``(B|1, 16, Tp, H, W)`` (already x scale_factor). Whole prefix chunks
  are run once at ``clean_t`` to fill the KV cache; the leftover prefix frames (the i2v image) overwrite
  the corresponding latent frames before every forward (t unchanged). Output chunks exclude the prefix
  except for i2v, where chunk 0 keeps its frame 0 (its integrated value), as upstream.

The initial noise is given by the caller (the whole latent including the prefix region, as the
official sampler draws it: ``torch.randn`` on the CPU after seeding), so results are deterministic
and a batch of candidates equals the single runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from . import schedule as S
from .cfg_parallel import CfgSplit
from .config import MagiConfig

__all__ = [
    "SamplerSettings",
    "StepState",
    "SampleResult",
    "SamplingSession",
    "sample",
    "draw_noise",
    "latent_frames",
    "prefix_chunks",
]

PREV_CHUNKS_SCALE = 0.7  # official env ``prev_chunks_scale`` (distill nearly-clean blend)


@dataclass(frozen=True)
class SamplerSettings:
    """Everything the sampler reads from a :class:`MagiConfig`, built by ``from_magi_config`` (no
    defaults here: the upstream constants live once, in ``config.py``)."""

    num_steps: int
    window_size: int
    chunk_width: int
    cfg_number: int
    cfg_t_range: tuple
    prev_chunk_scales: tuple
    text_scales: tuple
    noise2clean_kvrange: tuple
    clean_chunk_kvrange: int
    clean_t: float
    distill: bool
    nearly_clean_threshold: float
    shortcut_mode: str
    prev_chunks_scale: float
    kv_offload: bool

    @classmethod
    def from_magi_config(cls, cfg: MagiConfig, prev_chunks_scale: float = PREV_CHUNKS_SCALE) -> SamplerSettings:
        r, e = cfg.runtime_config, cfg.engine_config
        return cls(
            num_steps=r.num_steps,
            window_size=r.window_size,
            chunk_width=r.chunk_width,
            cfg_number=r.cfg_number,
            cfg_t_range=tuple(r.cfg_t_range),
            prev_chunk_scales=tuple(r.prev_chunk_scales),
            text_scales=tuple(r.text_scales),
            noise2clean_kvrange=tuple(r.noise2clean_kvrange),
            clean_chunk_kvrange=r.clean_chunk_kvrange,
            clean_t=r.clean_t,
            distill=e.distill,
            nearly_clean_threshold=e.distill_nearly_clean_chunk_threshold,
            shortcut_mode=e.shortcut_mode,
            prev_chunks_scale=float(prev_chunks_scale),
            kv_offload=e.kv_offload,
        )

    def validate(self) -> None:
        if self.cfg_number not in (1, 3):
            raise ValueError(f"cfg_number must be 1 or 3, got {self.cfg_number}")
        if self.num_steps % self.window_size:
            raise ValueError(f"num_steps={self.num_steps} must be divisible by window_size={self.window_size}")
        if self.noise2clean_kvrange and self.num_steps % len(self.noise2clean_kvrange):
            raise ValueError(f"num_steps={self.num_steps} must be divisible by len(noise2clean_kvrange)")


# ----------------------------------------------------------------------------------- geometry
def latent_frames(num_frames: int, prefix_frames: int = 0, chunk_width: int = 6, temporal_downsample: int = 4) -> int:
    """T of the whole latent (prefix region included): ``6 * ceil((num_frames // 4 + Tp) / 6)``."""
    lat = num_frames // temporal_downsample + prefix_frames
    return chunk_width * max(1, -(-lat // chunk_width))


def prefix_chunks(prefix_frames: int, chunk_width: int = 6) -> int:
    """Whole clean prefix chunks (``chunk_offset``); they are never denoised nor returned."""
    return prefix_frames // chunk_width


def draw_noise(seed: int, shape: Sequence[int]) -> torch.Tensor:
    """The official initial latent for ``seed``: ``torch.randn`` on the CPU after seeding (float32).
    (A GPU draws different numbers for the same seed; we always draw on the CPU.)"""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(*shape, generator=g)


@dataclass
class SampleResult:
    """``chunks[i]``: ``(B, 16, t_i, H, W)`` finished clean latents of output chunk ``i`` (prefix
    excluded); ``latents``: the final whole latent; ``forward_steps``/``model_calls``/``nfe`` counters."""

    chunks: list
    latents: torch.Tensor
    forward_steps: int
    model_calls: int
    nfe: int = 0  # generator passes x rows (a 3-pass CFG step of B rows counts 3B)

    @property
    def latent(self) -> torch.Tensor:
        return torch.cat(self.chunks, dim=2)


@dataclass(frozen=True)
class StepState:
    """What a guide sees in the middle of a forward step, after the velocity and before the Euler
    step: the chunks being denoised (``chunk_ids``, each at its own place ``chunk_steps`` on the
    schedule and its ``t``), their latents ``x`` (B, 16, nd * chunk_width, H, W) (prefix frames
    already written in) and velocities ``v``. Nearest to clean first."""

    step: int
    chunk_ids: tuple[int, ...]
    chunk_steps: tuple[int, ...]
    t: torch.Tensor  # (nd,)
    x: torch.Tensor
    v: torch.Tensor
    chunk_width: int
    num_steps: int
    # velocity(x) of the denoised chunks from latents x shaped like ``x``, differentiable (through
    # the model); None where the engine cannot recompute it
    velocity: Callable[[torch.Tensor], torch.Tensor] | None = None

    def chunk(self, j: int) -> slice:
        """The latent frames of the j-th denoised chunk in ``x`` / ``v``."""
        return slice(j * self.chunk_width, (j + 1) * self.chunk_width)

    def clean_estimate(self, j: int, x: torch.Tensor | None = None) -> torch.Tensor:
        """x-hat = x + (1 - t) v of the j-th chunk (rectified flow, t = 1 clean), from ``x`` (default:
        the state's latents of that chunk) with the velocity fixed."""
        xj = self.x[:, :, self.chunk(j)] if x is None else x
        return xj + (1 - float(self.t[j])) * self.v[:, :, self.chunk(j)]


# A guide returns the denoised chunks' latents to take the Euler step from, or None to keep them.
Guide = Callable[[StepState], "torch.Tensor | None"]


# ----------------------------------------------------------------------------------- sampler
def _rows(t: torch.Tensor, B: int, idx: Sequence[int]) -> torch.Tensor:
    """(B|1, n_chunks, ...) per-chunk rows -> (B*len(idx), ...) in row order b*dn + j."""
    sel = t[:, list(idx)]
    if sel.shape[0] == 1 and B > 1:
        sel = sel.expand(B, *sel.shape[1:])
    return sel.reshape(B * len(idx), *sel.shape[2:])


class SamplingSession:
    """A batch of candidates in flight, advanced one forward step at a time by its driver (``sample``
    below, or a search strategy): :meth:`step` runs one forward step of every chunk in the window;
    between steps the driver may read the state (``latents``, ``chunk_t``, ``finished``), replace
    the latents (:meth:`replace_latents`) or re-index the rows (:meth:`select_rows`: latents, KV
    cache, finished chunks, caption rows and prefix together; duplicated rows may get fresh noise for
    the chunks no step has touched, so they diverge). A chunk that a step finished is committed to
    ``finished`` when the next step starts (or at :meth:`result`), so changes made at its boundary
    are in it. Inputs as for :func:`sample`.

    Counters: ``forward_steps``, ``model_calls`` (DiT passes) and ``nfe`` (passes x rows: a 3-pass CFG
    step of B rows is 3B; the one-off pass filling the KV cache with a v2v prefix counts too)."""

    def __init__(
        self,
        model,
        settings: SamplerSettings,
        noise: torch.Tensor,
        text_embs: torch.Tensor,
        text_masks: torch.Tensor,
        null_embs: torch.Tensor,
        null_masks: torch.Tensor,
        prefix: torch.Tensor | None = None,
        *,
        device: torch.device | str | None = None,
        cfg_split: CfgSplit | None = None,
    ):
        settings.validate()
        self.cfg_split = cfg_split
        st = self.settings = settings
        self.model = model
        dev = self.device = torch.device(device) if device is not None else next(model.parameters()).device
        W = st.chunk_width
        x = noise.to(dev, torch.float32).clone()
        B, C, T, H, Wd = x.shape
        if T % W:
            raise ValueError(f"noise has {T} latent frames, not a multiple of chunk_width={W}")
        chunk_num = T // W
        Tp = 0 if prefix is None else int(prefix.shape[2])
        if prefix is not None:
            prefix = prefix.to(dev, torch.float32)
            if prefix.shape[0] not in (1, B) or tuple(prefix.shape[3:]) != (H, Wd) or prefix.shape[1] != C:
                raise ValueError(f"prefix {tuple(prefix.shape)} does not fit the latent {tuple(x.shape)}")
            if Tp >= T:
                raise ValueError(f"prefix of {Tp} latent frames leaves nothing to generate in {T} frames")
            prefix = prefix.expand(B, *prefix.shape[1:])
        for name, tt in (("text_embs", text_embs), ("null_embs", null_embs)):
            if tt.ndim != 4 or tt.shape[1] < chunk_num or tt.shape[0] not in (1, B):
                raise ValueError(f"{name} must be (B|1, n_chunks>={chunk_num}, L, C), got {tuple(tt.shape)}")
        self.x, self.prefix, self.Tp = x, prefix, Tp
        self.text_embs, self.null_embs = text_embs.to(dev, torch.float32), null_embs.to(dev, torch.float32)
        self.text_masks, self.null_masks = text_masks.to(dev), null_masks.to(dev)
        self.chunk_num, self.offset = chunk_num, prefix_chunks(Tp, W)
        n = st.num_steps
        self.per = n // st.window_size
        self.grid = S.t_grid(n, st.shortcut_mode)
        self.intervals = S.distill_intervals(n, st.shortcut_mode)
        self.stages = S.window_stages(chunk_num, st.window_size, self.offset)
        self.total = self.per * len(self.stages)
        self.tok = model.tokens_per_chunk(W, H, Wd)
        self.cache = model.new_kv_cache(max_chunks=chunk_num, tokens_per_chunk=self.tok, batch=B, offload=st.kv_offload)
        self.counts = [0] * chunk_num  # forward steps each chunk has had (n = clean)
        self.finished: list[torch.Tensor] = []
        self._pending: tuple[int, int] | None = None  # (start, end) latent frames of a chunk to commit
        self.step_index = 0
        self.model_calls = 0
        self.nfe = 0
        if self.offset > 0:
            self._fill_prefix_cache()

    # ---------------------------------------------------------------------------------- state
    @property
    def rows(self) -> int:
        return int(self.x.shape[0])

    @property
    def done(self) -> bool:
        return self.step_index >= self.total

    @property
    def latents(self) -> torch.Tensor:
        """The whole latent ``(B, 16, T, H, W)``: finished chunks, chunks in flight, untouched noise."""
        return self.x

    @property
    def chunk_t(self) -> list[float]:
        """Each chunk's t on the schedule (0 noise, 1 clean), prefix chunks included."""
        n = self.settings.num_steps
        return [float(self.grid[c]) if c < n else 1.0 for c in self.counts]

    @property
    def untouched_chunks(self) -> list[int]:
        """Chunks no step has reached yet (their latents are still the initial noise): where a
        duplicated row can get fresh noise. A suffix of the video; empty once the last chunk is
        in the window."""
        return [c for c, k in enumerate(self.counts) if k == 0 and c >= self.offset]

    def replace_latents(self, x: torch.Tensor) -> None:
        self.x = _replacement(x, self.x)

    def select_rows(self, rows: Sequence[int], fresh_noise: dict[int, int] | None = None) -> None:
        """Row b continues from row ``rows[b]`` (any number of rows: the batch may grow or shrink).
        ``fresh_noise`` {new row: seed}: those rows get new noise (drawn like :func:`draw_noise`) in
        the chunks no step has touched yet, so a duplicated row diverges from its parent there."""
        old = self.rows
        if not rows or not all(0 <= int(r) < old for r in rows):
            raise ValueError(f"rows must be indices into the {old} rows, got {list(rows)!r}")
        self.commit()
        ri = torch.tensor([int(r) for r in rows], device=self.x.device)

        def pick(t: torch.Tensor) -> torch.Tensor:  # rows shared by the batch (B = 1) stay shared
            return t[ri.to(t.device)] if t.shape[0] == old else t

        self.x = self.x[ri].clone()
        self.cache.select_rows(ri)
        self.finished = [f[ri.to(f.device)] for f in self.finished]
        self.text_embs, self.text_masks = pick(self.text_embs), pick(self.text_masks)
        self.null_embs, self.null_masks = pick(self.null_embs), pick(self.null_masks)
        if self.prefix is not None:
            self.prefix = self.prefix[ri.to(self.prefix.device)]
        W = self.settings.chunk_width
        untouched = self.untouched_chunks
        for row, seed in (fresh_noise or {}).items():
            if untouched:
                full = draw_noise(seed, (1, *self.x.shape[1:])).to(self.x.device)
                start = untouched[0] * W
                self.x[row, :, start:] = full[0, :, start:]

    # ---------------------------------------------------------------------------------- steps
    def _fwd(self, xx, tt, yy, drop, mm, kv, *, cache_on, slice_point, update, nearly=False, didx=0, run=True):
        """One DiT pass; with ``run`` False (CFG parallelism: another rank runs it) only counted."""
        st = self.settings
        self.model_calls += 1
        self.nfe += self.rows
        if not run:
            return None
        dt = None
        if st.distill:
            n = st.num_steps
            dt = S.distill_dt_factor(n, float(self.intervals[didx]) if n == 12 else None)
        return self.model(
            xx,
            tt,
            yy,
            drop,
            mm,
            kv,
            self.cache if cache_on else None,
            slice_point=slice_point,
            update_kv_cache=update,
            distill_nearly_clean_chunk=nearly,
            distill_dt=dt,
        )

    @torch.no_grad()
    def _fill_prefix_cache(self) -> None:
        """v2v: whole clean prefix chunks fill the KV cache once (official extract_prefix_video_feature).
        Base: the cache is written by the null-caption pass (adaLN null token [-1]); distill: the
        single pass with caption_dropout_mask False. The other CFG passes have no side effects."""
        st, B, W, offset = self.settings, self.rows, self.settings.chunk_width, self.offset
        assert self.prefix is not None  # whole prefix chunks exist only with a prefix
        xp = self.prefix[:, :, : offset * W]
        tp = torch.full((B, offset), float(st.clean_t), device=self.device)
        prev = (
            st.clean_chunk_kvrange
            if st.clean_chunk_kvrange != -1
            else (st.noise2clean_kvrange[-1] if st.noise2clean_kvrange else 8)
        )
        tok = self.tok
        kv = torch.tensor([[max(0, i + 1 - prev) * tok, (i + 1) * tok] for i in range(offset)], dtype=torch.int32)
        yy, mm = _rows(self.null_embs, B, range(offset)), _rows(self.null_masks, B, range(offset))
        self._fwd(xp, tp, yy, st.cfg_number == 3, mm, kv, cache_on=True, slice_point=0, update=True, didx=0)

    def commit(self) -> None:
        """Append the chunk the last step finished to ``finished`` now (it is done anyway before
        the next step): after this, changes to the latents no longer reach it."""
        if self._pending is not None:
            start, end = self._pending
            self.finished.append(self.x[:, :, start:end].clone())
            self._pending = None

    @torch.no_grad()  # a guide turns grad on for its own work
    def step(self, guide: Guide | None = None) -> dict:
        """One forward step of every chunk in the window. Returns what ``sample``'s ``on_step`` gets
        (``step``, ``num_steps``, ``latents``, ``chunk_ids``, ``chunk_t_before``, ``chunk_t``,
        ``denoised`` = x + (1 - t) v of the stepped chunks, ``chunk_frames``) plus ``finished_chunk``:
        None, or (output chunk index, latent frame range) of the chunk this step finished.

        ``guide`` (reward guidance) sees the :class:`StepState` once the velocity is known and may
        move the denoised chunks' latents; the Euler step then starts from where it moved them,
        with the velocity already computed."""
        if self.done:
            raise RuntimeError("the session is finished")
        self.commit()
        st, x, dev = self.settings, self.x, self.device
        W, n, tok, offset = st.chunk_width, st.num_steps, self.tok, self.offset
        B, C, _, H, Wd = x.shape
        step = self.step_index
        stage_i, didx = divmod(step, self.per)
        ws = self.stages[stage_i]
        cs, ce = ws.chunk_start, ws.chunk_end
        extra = cs > offset and didx == 0
        slice_point = cs - 1 if extra else cs
        idx = S.chunk_step_indices(ws, n, st.window_size, didx)  # t-grid index per denoised chunk
        t_den = self.grid[idx]
        t_next = self.grid[[i + 1 for i in idx]]
        xc = x[:, :, cs * W : ce * W].clone()
        text_rows = list(range(cs, ce))
        y_text, m_text = _rows(self.text_embs, B, text_rows), _rows(self.text_masks, B, text_rows)
        y_null, m_null = _rows(self.null_embs, B, text_rows), _rows(self.null_masks, B, text_rows)
        tt = t_den
        step_idx = list(idx)
        if extra:
            xc = torch.cat([x[:, :, (cs - 1) * W : cs * W], xc], dim=2)
            tt = torch.cat([torch.tensor([float(st.clean_t)]), t_den])
            step_idx = [n] + step_idx

            # the clean chunk gets a null row (official y[1:2, 0:1], mask emb_masks[1:2, 1:2]) in both halves
            def with_null(rows, null_rows):
                r = rows.view(B, -1, *rows.shape[1:])
                nr = null_rows.view(B, -1, *null_rows.shape[1:])[:, :1]
                return torch.cat([nr, r], dim=1).reshape(-1, *rows.shape[1:])

            y_text, m_text = with_null(y_text, y_null), with_null(m_text, m_null)
            y_null, m_null = with_null(y_null, y_null), with_null(m_null, m_null)
        dn = len(step_idx)
        tt = tt.to(dev).float().unsqueeze(0).repeat(B, 1)
        kv = S.chunk_kv_ranges(slice_point, step_idx, n, st.noise2clean_kvrange, st.clean_chunk_kvrange, tok)
        # ---- i2v / v2v leftover prefix frames overwrite the latent before every forward
        prefix, Tp = self.prefix, self.Tp
        xc = self._with_prefix(xc, slice_point)
        if prefix is not None and Tp > slice_point * W and (Tp - slice_point * W) // W > 0:
            tt[:, : (Tp - slice_point * W) // W] = 1.0
        touch = extra or slice_point > 0  # the official code touches the cache only then
        k0 = 1 if extra else 0
        passes = (y_text, m_text, y_null, m_null, kv, touch, slice_point, k0, dn, didx)
        v = self._velocity(xc, tt, *passes, write_cache=True)
        # ---- Euler step on the (prefix-padded) denoised chunks
        x_den = xc[:, :, k0 * W :]
        nd = dn - k0
        if guide is not None:

            def velocity(x_new: torch.Tensor) -> torch.Tensor:
                """The same passes from other latents of the denoised chunks, with grad, the cache
                read but not written (counted in the NFEs)."""
                full = torch.cat([xc[:, :, : k0 * W], x_new], dim=2) if k0 else x_new
                with torch.enable_grad():
                    return self._velocity(self._with_prefix(full, slice_point), tt, *passes, write_cache=False)

            state = StepState(
                step, tuple(range(cs, ce)), tuple(int(i) for i in idx), t_den.to(dev), x_den, v, W, n, velocity
            )
            moved = guide(state)
            if moved is not None:
                x_den = _replacement(moved, x_den)
        dt = (t_next - t_den).to(dev).view(1, 1, nd, 1, 1, 1)
        x_new = (x_den.reshape(B, C, nd, W, H, Wd) + v.reshape(B, C, nd, W, H, Wd) * dt).reshape(x_den.shape)
        x[:, :, cs * W : ce * W] = x_new
        for c in range(cs, ce):
            self.counts[c] += 1
        self.step_index += 1
        t_b = t_den.to(dev).view(1, 1, nd, 1, 1, 1)
        den = (x_den.reshape(B, C, nd, W, H, Wd) + (1 - t_b) * v.reshape(B, C, nd, W, H, Wd)).reshape(x_den.shape)
        finished_chunk = None
        if self.counts[cs] == n and not (prefix is not None and (cs + 1) * W <= Tp):
            real_start = max(cs * W, Tp) if prefix is not None else cs * W
            if prefix is not None and cs == 0 and Tp == 1:
                real_start = 0  # i2v keeps its first latent frame (the integrated value)
            self._pending = (real_start, (cs + 1) * W)
            finished_chunk = (cs - offset, self._pending)
        return {
            "step": step,
            "num_steps": self.total,
            "latents": x,
            "chunk_ids": tuple(range(cs, ce)),
            "chunk_t_before": tuple(float(a) for a in t_den),
            "chunk_t": tuple(float(a) for a in t_next),
            "denoised": den,
            "chunk_frames": (cs * W, ce * W),
            "finished_chunk": finished_chunk,
        }

    def _with_prefix(self, xc: torch.Tensor, slice_point: int) -> torch.Tensor:
        """``xc`` (chunks from ``slice_point`` on) with the leftover prefix frames (the i2v image, the
        v2v frames past its whole chunks) written over its first frames; a new tensor, so a
        gradient reaches the other frames."""
        p0 = slice_point * self.settings.chunk_width
        if self.prefix is None or self.Tp <= p0:
            return xc
        pad = min(self.Tp - p0, xc.shape[2])
        return torch.cat([self.prefix[:, :, p0 : p0 + pad].to(xc.dtype), xc[:, :, pad:]], dim=2)

    def _velocity(self, xc, tt, y_text, m_text, y_null, m_null, kv, touch, slice_point, k0, dn, didx, *, write_cache):
        if self.settings.cfg_number == 3:
            return self._cfg_velocity(
                xc, tt, y_text, m_text, y_null, m_null, kv, touch, slice_point, k0, dn, write_cache=write_cache
            )
        return self._distill_velocity(
            xc, tt, y_text, m_text, kv, touch, slice_point, k0, dn, didx, write_cache=write_cache
        )

    def _cfg_velocity(self, xc, tt, y_text, m_text, y_null, m_null, kv, touch, slice_point, k0, dn, write_cache=True):
        """Base models: text + history, null caption + history (writes the cache), every denoised
        chunk alone without history; combined per chunk with ``schedule.cfg_scales``."""
        st, W, tok = self.settings, self.settings.chunk_width, self.tok
        B, C, _, H, Wd = xc.shape
        # a step recomputed with grad (guidance through the model) runs every pass on every rank,
        # so each holds the whole gradient
        split = None if torch.is_grad_enabled() else self.cfg_split
        run = [split is None or split.runs(i) for i in range(3)]
        writes = touch and write_cache
        v_text = self._fwd(
            xc, tt, y_text, False, m_text, kv, cache_on=touch, slice_point=slice_point, update=False, run=run[0]
        )
        v_pre = self._fwd(
            xc, tt, y_null, True, m_null, kv, cache_on=touch, slice_point=slice_point, update=writes, run=run[1]
        )
        nd = dn - k0
        xu = xc[:, :, k0 * W :].reshape(B, C, nd, W, H, Wd).transpose(1, 2).reshape(B * nd, C, W, H, Wd)
        tu = tt[:, k0:].reshape(B * nd, 1)
        yu = y_null.view(B, dn, *y_null.shape[1:])[:, k0:].reshape(B * nd, *y_null.shape[1:])
        mu = m_null.view(B, dn, *m_null.shape[1:])[:, k0:].reshape(B * nd, *m_null.shape[1:])
        kv_alone = torch.tensor([[0, tok]], dtype=torch.int32)
        v_un = self._fwd(xu, tu, yu, True, mu, kv_alone, cache_on=False, slice_point=0, update=False, run=run[2])
        if split is not None:
            v_text, v_pre, v_un = split.share([v_text, v_pre, v_un], [xc.shape, xc.shape, xu.shape], xc.device)
            if writes and k0:  # the chunk that just became clean: the slot later steps read
                split.share_cache(self.cache, slice_point * tok, (slice_point + 1) * tok, 1, xc.device)
        v_un = v_un.reshape(B, nd, C, W, H, Wd).transpose(1, 2).reshape(B, C, nd * W, H, Wd)
        parts = []
        for j in range(nd):
            p, s = S.cfg_scales(float(tt[0, k0 + j]), st.cfg_t_range, st.prev_chunk_scales, st.text_scales)
            sl = slice((k0 + j) * W, (k0 + j + 1) * W)
            u = v_un[:, :, j * W : (j + 1) * W]
            parts.append((1 - p) * u + (p - s) * v_pre[:, :, sl] + s * v_text[:, :, sl])
        return torch.cat(parts, dim=2)

    def _distill_velocity(self, xc, tt, y_text, m_text, kv, touch, slice_point, k0, dn, didx, write_cache=True):
        """Distill models: one pass with text (writes the cache); when the oldest denoised chunk is
        nearly clean it is appended once more without history and the two are blended."""
        st, W, tok = self.settings, self.settings.chunk_width, self.tok
        B = xc.shape[0]
        if not float(tt[0, k0]) > st.nearly_clean_threshold:
            v = self._fwd(
                xc,
                tt,
                y_text,
                False,
                m_text,
                kv,
                cache_on=touch,
                slice_point=slice_point,
                update=touch and write_cache,
                didx=didx,
            )
            return v[:, :, k0 * W :]
        new = xc[:, :, k0 * W : (k0 + 1) * W]
        xcat = torch.cat([xc, new], dim=2)
        end = int(kv.max())
        kvcat = torch.cat([kv, torch.tensor([[end, end + tok]], dtype=torch.int32)])
        tcat = torch.cat([tt, tt[:, k0 : k0 + 1]], dim=1)
        yv, mv = y_text.view(B, dn, *y_text.shape[1:]), m_text.view(B, dn, *m_text.shape[1:])
        ycat = torch.cat([yv, yv[:, k0 : k0 + 1]], dim=1).reshape(B * (dn + 1), *y_text.shape[1:])
        mcat = torch.cat([mv, mv[:, k0 : k0 + 1]], dim=1).reshape(B * (dn + 1), *m_text.shape[1:])
        out = self._fwd(
            xcat,
            tcat,
            ycat,
            False,
            mcat,
            kvcat,
            cache_on=touch,
            slice_point=slice_point,
            update=touch and write_cache,
            nearly=True,
            didx=didx,
        )
        Tc = xc.shape[2]
        sl = slice(k0 * W, (k0 + 1) * W)
        out_main = out[:, :, :Tc].clone()
        out_main[:, :, sl] = out[:, :, sl] * st.prev_chunks_scale + out[:, :, Tc:] * (1 - st.prev_chunks_scale)
        return out_main[:, :, k0 * W :]

    def advance_to_chunk_boundary(self) -> dict | None:
        """Steps until one finishes a chunk (or the session ends); the last step's dict, or None
        when the session was already finished."""
        info = None
        while not self.done:
            info = self.step()
            if info["finished_chunk"] is not None:
                break
        return info

    def result(self) -> SampleResult:
        self.commit()
        return SampleResult(
            chunks=list(self.finished),
            latents=self.x,
            forward_steps=self.step_index,
            model_calls=self.model_calls,
            nfe=self.nfe,
        )


def sample(
    model,
    settings: SamplerSettings,
    noise: torch.Tensor,
    text_embs: torch.Tensor,
    text_masks: torch.Tensor,
    null_embs: torch.Tensor,
    null_masks: torch.Tensor,
    prefix: torch.Tensor | None = None,
    *,
    on_step: Callable[[dict], Any | None] | None = None,
    on_chunk: Callable[[dict], Any | None] | None = None,
    device: torch.device | str | None = None,
    cfg_split: CfgSplit | None = None,
) -> SampleResult:
    """Run the chunk-wise sampler to the end (a :class:`SamplingSession` driven step by step). Inputs:

    * ``noise`` ``(B, 16, T, H, W)``: the whole initial latent (prefix region included);
    * ``text_embs`` ``(B|1, n_chunks, L, C)`` / ``text_masks`` ``(B|1, n_chunks, L)``: caption row of each
      chunk (``text.caption_rows``; clean prefix chunks may hold anything, they are never read);
    * ``null_embs`` / ``null_masks``: the null rows (``text.null_caption_rows``), same layout;
    * ``prefix`` ``(B|1, 16, Tp, H, W)`` or None.

    ``on_step(d)`` gets a dict after every forward step with ``step``, ``num_steps``, ``latents``
    (whole latent), ``chunk_ids``, ``chunk_t_before``, ``chunk_t``, ``denoised``, ``chunk_frames``;
    it may return a tensor replacing ``latents``. ``on_chunk(d)`` gets ``chunk``, ``num_chunks``,
    ``latent``, ``latents``, ``step`` when a chunk is finished and may return None, a tensor
    replacing ``latents``, or ``B`` row indices (row b continues from row rows[b]: latents, KV
    cache and finished chunks). ``cfg_split``: the CFG passes spread over ranks
    (``cfg_parallel.CfgSplit``; every rank gets the same result)."""
    session = SamplingSession(
        model, settings, noise, text_embs, text_masks, null_embs, null_masks, prefix, device=device, cfg_split=cfg_split
    )
    B = session.rows
    while not session.done:
        info = session.step()
        if on_step is not None:
            ret = on_step({k: v for k, v in info.items() if k != "finished_chunk"})
            if ret is not None:
                session.replace_latents(ret)
        if info["finished_chunk"] is not None and on_chunk is not None:
            chunk, (start, end) = info["finished_chunk"]
            ret = on_chunk(
                {
                    "chunk": chunk,
                    "num_chunks": session.chunk_num - session.offset,
                    "latent": session.latents[:, :, start:end],
                    "latents": session.latents,
                    "step": info["step"],
                }
            )
            if isinstance(ret, torch.Tensor):
                session.replace_latents(ret)
            elif ret is not None:
                rows = [int(r) for r in ret]
                if len(rows) != B or not all(0 <= r < B for r in rows):
                    raise ValueError(f"on_chunk must return None, a latent tensor or {B} row indices; got {ret!r}")
                session.select_rows(rows)
    return session.result()


def _replacement(ret: Any, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(ret, torch.Tensor) or tuple(ret.shape) != tuple(x.shape):
        raise ValueError(
            f"a hook must return None or a tensor of shape {tuple(x.shape)}, got {getattr(ret, 'shape', type(ret))}"
        )
    return ret.to(device=x.device, dtype=x.dtype).clone()
