"""MagiConfig JSON (the official ``example/*/*_config.json`` format) and architecture presets.

An official config has three sections, ``model_config`` (architecture, must match the checkpoint),
``runtime_config`` (sampling, sizes, paths) and ``engine_config`` (parallelism, quantization,
distillation). Like the official loader, every field of every section must be present; unlike it,
unknown fields are an error too, and every value is checked here:

* a field whose value this implementation honours is kept (see ``FIELD_USE`` for who reads it);
* a field whose value is not supported yet raises :class:`MagiConfigError` naming the field and
  the supported values (``fp8_quant: true``, ``pp_size > 1``, ``cp_strategy: cp_shuffle_overlap``,
  ``ulysses_overlap_degree > 1``, ``enable_cuda_graph: true``, ...).

No torch import at module level: the pipeline's config layer may import this cheaply.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import PipelineError


class MagiConfigError(PipelineError, ValueError):
    """An official MagiConfig JSON is malformed, incomplete or asks for something unsupported."""


_DTYPES = ("torch.bfloat16", "torch.float16", "torch.float32")


@dataclass(frozen=True)
class MagiModelConfig:
    """``model_config``: the DiT architecture (field names as in the official JSON)."""

    model_name: str = "videodit_ardf"
    num_layers: int = 34
    hidden_size: int = 3072
    ffn_hidden_size: int = 12288
    num_attention_heads: int = 24
    num_query_groups: int = 8
    kv_channels: int = 128
    layernorm_epsilon: float = 1e-6
    apply_layernorm_1p: bool = True
    x_rescale_factor: float = 1.0
    half_channel_vae: bool = False
    params_dtype: str = "torch.bfloat16"
    patch_size: int = 2
    t_patch_size: int = 1
    in_channels: int = 16
    out_channels: int = 16
    cond_hidden_ratio: float = 0.25
    caption_channels: int = 4096
    caption_max_length: int = 800
    xattn_cond_hidden_ratio: float = 1.0
    cond_gating_ratio: float = 1.0
    gated_linear_unit: bool = False

    # ---- derived sizes
    @property
    def cond_dim(self) -> int:
        return int(self.hidden_size * self.cond_hidden_ratio)

    @property
    def xattn_cond_dim(self) -> int:
        return int(self.hidden_size * self.xattn_cond_hidden_ratio)

    @property
    def gate_dim(self) -> int:
        """Width of one gate (gate_msa or gate_mlp)."""
        return int(self.hidden_size * self.cond_gating_ratio)

    @property
    def rope_bands(self) -> int:
        """Number of learned RoPE frequency bands (official: (hidden_size // heads) // 8)."""
        return (self.hidden_size // self.num_attention_heads) // 8

    @property
    def vae_channels(self) -> int:
        """Latent channels the model takes and returns (half of in_channels with half_channel_vae)."""
        return self.in_channels // 2 if self.half_channel_vae else self.in_channels

    @property
    def torch_dtype_name(self) -> str:
        return self.params_dtype.replace("torch.", "")

    def validate(self) -> None:
        """Raise MagiConfigError unless the architecture is one this DiT can build."""
        errs = []
        if self.model_name != "videodit_ardf":
            errs.append(f"model_config.model_name={self.model_name!r} (only 'videodit_ardf')")
        for name in (
            "num_layers",
            "hidden_size",
            "ffn_hidden_size",
            "num_attention_heads",
            "num_query_groups",
            "kv_channels",
            "patch_size",
            "t_patch_size",
            "in_channels",
            "out_channels",
            "caption_channels",
            "caption_max_length",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                errs.append(f"model_config.{name}={v!r} (a positive int)")
        if errs:
            raise MagiConfigError("unsupported model_config: " + "; ".join(errs))
        if self.num_attention_heads % self.num_query_groups:
            errs.append(
                f"num_attention_heads={self.num_attention_heads} must be a multiple of "
                f"num_query_groups={self.num_query_groups}"
            )
        if (self.num_attention_heads * self.kv_channels) % 8:
            errs.append(
                "num_attention_heads*kv_channels must be divisible by 8 (the fixed hn=8 output "
                "permutation before linear_proj)"
            )
        if self.rope_bands < 1 or 6 * self.rope_bands > self.kv_channels:
            errs.append(
                f"RoPE needs 6*((hidden_size//num_attention_heads)//8) = {6 * self.rope_bands} "
                f"rotary channels in 1..kv_channels={self.kv_channels}"
            )
        if self.params_dtype not in _DTYPES:
            errs.append(f"params_dtype={self.params_dtype!r} (one of {list(_DTYPES)})")
        if self.half_channel_vae and self.in_channels % 2:
            errs.append("half_channel_vae needs an even in_channels")
        if self.half_channel_vae and self.out_channels != self.in_channels:
            errs.append("half_channel_vae needs out_channels == in_channels")
        if not self.half_channel_vae and self.out_channels != self.in_channels:
            errs.append(f"out_channels={self.out_channels} != in_channels={self.in_channels} is not supported")
        if not (self.x_rescale_factor > 0):
            errs.append(f"x_rescale_factor={self.x_rescale_factor!r} must be > 0")
        if not (self.layernorm_epsilon > 0):
            errs.append(f"layernorm_epsilon={self.layernorm_epsilon!r} must be > 0")
        for name in ("cond_hidden_ratio", "xattn_cond_hidden_ratio", "cond_gating_ratio"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and int(self.hidden_size * v) >= 1):
                errs.append(f"{name}={v!r}")
        if self.gate_dim != self.hidden_size:
            errs.append(f"cond_gating_ratio={self.cond_gating_ratio} (gates must have hidden_size width; only 1.0)")
        if errs:
            raise MagiConfigError("unsupported model_config: " + "; ".join(errs))

    def num_parameters(self) -> int:
        """Parameter count of the DiT built from this config (no instantiation)."""
        D, F, H, G, hd = (
            self.hidden_size,
            self.ffn_hidden_size,
            self.num_attention_heads,
            self.num_query_groups,
            self.kv_channels,
        )
        c, cx, C = self.cond_dim, self.xattn_cond_dim, self.caption_channels
        p = self.patch_size * self.patch_size * self.t_patch_size
        emb = self.in_channels * D * p + (256 * c + c + c * c + c) + (C * cx + cx + C * c + c)
        emb += self.caption_max_length * C + self.rope_bands + 2 * D + D * p * self.out_channels
        layer = (c * 2 * self.gate_dim + 2 * self.gate_dim) + 2 * D  # ada, pre-LN
        layer += 2 * H * hd * D + 2 * G * hd * D + cx * 2 * G * hd + D * 2 * H * hd  # q qx k v, kv_xattn, proj
        layer += 4 * 2 * hd + 2 * D + 2 * D + 2 * D  # qk norms, post norms, mlp LN
        layer += D * F * (2 if self.gated_linear_unit else 1) + F * D
        return emb + self.num_layers * layer


@dataclass(frozen=True)
class MagiRuntimeConfig:
    """``runtime_config``: sampling, video size and checkpoint paths."""

    cfg_number: int = 3
    cfg_t_range: tuple = (0.0, 0.0217, 0.1, 0.3, 0.999)
    prev_chunk_scales: tuple = (1.5, 1.5, 1.5, 1.0, 1.0)
    text_scales: tuple = (7.5, 7.5, 7.5, 0.0, 0.0)
    noise2clean_kvrange: tuple = (5, 4, 3, 2)
    clean_chunk_kvrange: int = 1
    clean_t: float = 0.9999
    seed: int = 1234
    num_frames: int = 96
    video_size_h: int = 720
    video_size_w: int = 720
    num_steps: int = 64
    window_size: int = 4
    fps: int = 24
    chunk_width: int = 6
    load: str | None = None
    t5_pretrained: str | None = None
    t5_device: str = "cpu"
    vae_pretrained: str | None = None
    scale_factor: float = 0.18215
    temporal_downsample_factor: int = 4

    def validate(self) -> None:
        errs = []
        if self.cfg_number not in (1, 3):
            errs.append(f"cfg_number={self.cfg_number!r} (1 or 3)")
        n = len(self.cfg_t_range)
        if n < 1 or len(self.prev_chunk_scales) != n or len(self.text_scales) != n:
            errs.append("cfg_t_range, prev_chunk_scales and text_scales must be non-empty and the same length")
        if list(self.cfg_t_range) != sorted(self.cfg_t_range):
            errs.append("cfg_t_range must be ascending")
        if not all(isinstance(k, int) and k >= 1 for k in self.noise2clean_kvrange):
            errs.append(f"noise2clean_kvrange={list(self.noise2clean_kvrange)} (positive ints)")
        if not (self.clean_chunk_kvrange == -1 or self.clean_chunk_kvrange >= 1):
            errs.append(f"clean_chunk_kvrange={self.clean_chunk_kvrange} (-1 or >= 1)")
        if not (0.0 < self.clean_t <= 1.0):
            errs.append(f"clean_t={self.clean_t} (in (0, 1])")
        for name in ("num_frames", "video_size_h", "video_size_w", "num_steps", "window_size", "fps", "chunk_width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                errs.append(f"{name}={v!r} (a positive int)")
        if not errs:
            if self.video_size_h % 16 or self.video_size_w % 16:
                errs.append(
                    f"video_size_h x video_size_w = {self.video_size_h}x{self.video_size_w} "
                    "(multiples of 16: VAE x8, patch 2)"
                )
            if self.num_steps % self.window_size:
                errs.append(f"num_steps={self.num_steps} must be divisible by window_size={self.window_size}")
            if self.noise2clean_kvrange and self.num_steps % len(self.noise2clean_kvrange):
                errs.append(
                    f"num_steps={self.num_steps} must be divisible by "
                    f"len(noise2clean_kvrange)={len(self.noise2clean_kvrange)}"
                )
        if self.temporal_downsample_factor != 4:
            errs.append(f"temporal_downsample_factor={self.temporal_downsample_factor} (the MAGI VAE is 4)")
        if not (self.scale_factor > 0):
            errs.append(f"scale_factor={self.scale_factor} (> 0)")
        if errs:
            raise MagiConfigError("unsupported runtime_config: " + "; ".join(errs))


@dataclass(frozen=True)
class MagiEngineConfig:
    """``engine_config``: parallelism, quantization and distillation switches."""

    distributed_backend: str = "nccl"
    distributed_timeout_minutes: int = 15
    pp_size: int = 1
    cp_size: int = 1
    cp_strategy: str = "none"
    ulysses_overlap_degree: int = 1
    fp8_quant: bool = False
    distill_nearly_clean_chunk_threshold: float = 0.3
    shortcut_mode: str = "8,16,16"
    distill: bool = False
    kv_offload: bool = False
    enable_cuda_graph: bool = False

    def validate(self) -> None:
        errs = []
        if self.distributed_backend not in ("nccl", "gloo"):
            errs.append(f"distributed_backend={self.distributed_backend!r} (nccl or gloo)")
        if self.pp_size != 1:
            errs.append(f"pp_size={self.pp_size}: pipeline parallelism over layers is not supported (use 1)")
        if self.cp_strategy not in ("none", "cp_ulysses"):
            errs.append(f"cp_strategy={self.cp_strategy!r}: only 'none' and 'cp_ulysses' are supported")
        if not isinstance(self.cp_size, int) or self.cp_size < 1:
            errs.append(f"cp_size={self.cp_size!r} (>= 1)")
        elif self.cp_strategy == "none" and self.cp_size != 1:
            errs.append("cp_strategy='none' requires cp_size=1")
        if self.ulysses_overlap_degree != 1:
            errs.append(f"ulysses_overlap_degree={self.ulysses_overlap_degree}: only 1 is supported")
        if self.fp8_quant:
            errs.append(
                "fp8_quant=true: fp8 (inference_weight.fp8.distill) weights are not supported yet; "
                "use the bf16 distill or base checkpoint"
            )
        if self.enable_cuda_graph:
            errs.append("enable_cuda_graph=true is not supported")
        if self.shortcut_mode not in ("8,16,16", "16,16,8"):
            errs.append(f"shortcut_mode={self.shortcut_mode!r} ('8,16,16' or '16,16,8')")
        if not (0.0 <= self.distill_nearly_clean_chunk_threshold <= 1.0):
            errs.append(f"distill_nearly_clean_chunk_threshold={self.distill_nearly_clean_chunk_threshold}")
        if errs:
            raise MagiConfigError("unsupported engine_config: " + "; ".join(errs))


# Who honours which field (documentation + a test checks every dataclass field is listed).
FIELD_USE: dict[str, str] = {
    **{f"model_config.{f.name}": "dit.MagiDiT" for f in dataclasses.fields(MagiModelConfig)},
    "runtime_config.cfg_number": "sampler (schedule.cfg_scales); checked against distill",
    "runtime_config.cfg_t_range": "schedule.cfg_scales",
    "runtime_config.prev_chunk_scales": "schedule.cfg_scales",
    "runtime_config.text_scales": "schedule.cfg_scales",
    "runtime_config.noise2clean_kvrange": "schedule.chunk_kv_ranges",
    "runtime_config.clean_chunk_kvrange": "schedule.chunk_kv_ranges",
    "runtime_config.clean_t": "sampler (t of the re-computed clean chunk)",
    "runtime_config.seed": "sampler / generator (per-request seeds override)",
    "runtime_config.num_frames": "schedule.num_chunks",
    "runtime_config.video_size_h": "generator (height)",
    "runtime_config.video_size_w": "generator (width)",
    "runtime_config.num_steps": "schedule.t_grid",
    "runtime_config.window_size": "schedule.window_stages",
    "runtime_config.fps": "generator (container fps, VAE tile length)",
    "runtime_config.chunk_width": "schedule / sampler (latent frames per chunk)",
    "runtime_config.load": "checkpoint.resolve_weight_dir",
    "runtime_config.t5_pretrained": "text encoder",
    "runtime_config.t5_device": "text encoder",
    "runtime_config.vae_pretrained": "VAE",
    "runtime_config.scale_factor": "VAE latent scaling",
    "runtime_config.temporal_downsample_factor": "validated == 4",
    "engine_config.distributed_backend": "not read: NCCL on GPUs, gloo on CPUs (parallelize.init_distributed)",
    "engine_config.distributed_timeout_minutes": "not read: torch.distributed's default",
    "engine_config.pp_size": "validated == 1",
    "engine_config.cp_size": "not read: the layout is generator.parallel (Ulysses ranks: parallel.sp)",
    "engine_config.cp_strategy": "validated ('none' | 'cp_ulysses'); the layout is generator.parallel",
    "engine_config.ulysses_overlap_degree": "validated == 1",
    "engine_config.fp8_quant": "validated false (fp8 not supported yet); selects the weight folder",
    "engine_config.distill_nearly_clean_chunk_threshold": "sampler (distill extra history-free pass)",
    "engine_config.shortcut_mode": "schedule.t_grid / distill_intervals (12-step schedules)",
    "engine_config.distill": "checkpoint folder + forward(distill_dt=...) + cfg_number 1",
    "engine_config.kv_offload": "attention.KVCache(offload=...)",
    "engine_config.enable_cuda_graph": "validated false",
}


@dataclass(frozen=True)
class MagiConfig:
    model_config: MagiModelConfig = field(default_factory=MagiModelConfig)
    runtime_config: MagiRuntimeConfig = field(default_factory=MagiRuntimeConfig)
    engine_config: MagiEngineConfig = field(default_factory=MagiEngineConfig)

    def validate(self) -> MagiConfig:
        self.model_config.validate()
        self.runtime_config.validate()
        self.engine_config.validate()
        e, r = self.engine_config, self.runtime_config
        if (e.distill or e.fp8_quant) and r.cfg_number != 1:
            raise MagiConfigError(
                f"runtime_config.cfg_number must be 1 for a distill or fp8 model (got {r.cfg_number})"
            )
        if not (e.distill or e.fp8_quant) and r.cfg_number != 3:
            raise MagiConfigError(f"runtime_config.cfg_number must be 3 for a base model (got {r.cfg_number})")
        if e.cp_size > 1:
            m = self.model_config
            if m.num_attention_heads % e.cp_size:
                raise MagiConfigError(
                    f"engine_config.cp_size={e.cp_size} must divide "
                    f"num_attention_heads={m.num_attention_heads} (Ulysses splits heads)"
                )
            if not (m.num_query_groups % e.cp_size == 0 or e.cp_size % m.num_query_groups == 0):
                raise MagiConfigError(
                    f"engine_config.cp_size={e.cp_size} and num_query_groups="
                    f"{m.num_query_groups}: one must divide the other"
                )
        return self

    def to_dict(self) -> dict:
        out = {}
        for sec in ("model_config", "runtime_config", "engine_config"):
            d = dataclasses.asdict(getattr(self, sec))
            out[sec] = {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
        return out

    def to_json(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=4)

    def replace(self, **sections: dict) -> MagiConfig:
        """Copy with fields replaced per section: ``cfg.replace(runtime_config={"num_steps": 16})``."""
        kw = {}
        for sec, changes in sections.items():
            kw[sec] = dataclasses.replace(getattr(self, sec), **changes)
        return dataclasses.replace(self, **kw)


_SECTIONS = {"model_config": MagiModelConfig, "runtime_config": MagiRuntimeConfig, "engine_config": MagiEngineConfig}


def parse_magi_config(data: dict, *, source: str = "<dict>", validate: bool = True) -> MagiConfig:
    """Build a :class:`MagiConfig` from the parsed JSON of an official config file.

    Missing sections/fields and unknown fields raise MagiConfigError naming them; with
    ``validate`` (default) every value is also checked as described in the module docstring."""
    if not isinstance(data, dict):
        raise MagiConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
    unknown_sec = sorted(set(data) - set(_SECTIONS))
    missing_sec = sorted(set(_SECTIONS) - set(data))
    if unknown_sec or missing_sec:
        raise MagiConfigError(
            f"{source}: sections must be exactly {sorted(_SECTIONS)}; missing {missing_sec}, unknown {unknown_sec}"
        )
    kw = {}
    for sec, cls in _SECTIONS.items():
        d = data[sec]
        if not isinstance(d, dict):
            raise MagiConfigError(f"{source}: {sec} must be an object")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in d]
        unknown = sorted(set(d) - set(names))
        if missing:
            raise MagiConfigError(f"{source}: {sec} is missing field(s): {', '.join(missing)}")
        if unknown:
            raise MagiConfigError(
                f"{source}: {sec} has unsupported field(s): {', '.join(unknown)} (known: {', '.join(names)})"
            )
        vals = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        if sec == "model_config":
            pd = vals["params_dtype"]
            vals["params_dtype"] = pd if str(pd).startswith("torch.") else f"torch.{pd}"
            for k in (
                "x_rescale_factor",
                "layernorm_epsilon",
                "cond_hidden_ratio",
                "xattn_cond_hidden_ratio",
                "cond_gating_ratio",
            ):
                value = vals[k]
                if isinstance(value, int) and not isinstance(value, bool):
                    vals[k] = float(value)
        kw[sec] = cls(**vals)
    cfg = MagiConfig(**kw)
    if validate:
        try:
            cfg.validate()
        except MagiConfigError as e:
            raise MagiConfigError(f"{source}: {e}") from None
    return cfg


def load_magi_config(path: str | os.PathLike, *, validate: bool = True) -> MagiConfig:
    """Read an official MagiConfig JSON file (e.g. ``example/4.5B/4.5B_base_config.json``)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        raise MagiConfigError(f"cannot read MagiConfig JSON {path}: {e}") from None
    except ValueError as e:
        raise MagiConfigError(f"{path} is not valid JSON: {e}") from None
    return parse_magi_config(data, source=str(path), validate=validate)


# --------------------------------------------------------------------------------------- presets
_M24 = MagiModelConfig(
    num_layers=48,
    hidden_size=6144,
    ffn_hidden_size=16384,
    num_attention_heads=48,
    num_query_groups=8,
    kv_channels=128,
    x_rescale_factor=0.1,
    half_channel_vae=True,
    in_channels=32,
    out_channels=32,
    gated_linear_unit=True,
)
_M45 = MagiModelConfig()  # the 4.5B architecture is the dataclass default
_MTINY = MagiModelConfig(
    num_layers=2,
    hidden_size=64,
    ffn_hidden_size=128,
    num_attention_heads=4,
    num_query_groups=2,
    kv_channels=16,
    caption_channels=32,
    caption_max_length=16,
    params_dtype="torch.float32",
)

VARIANTS = ("24b", "24b_distill", "4.5b", "4.5b_distill", "tiny", "tiny_distill")


def preset(variant: str) -> MagiConfig:
    """The shipped configuration of a variant (24B values from ``24B_*_config.json``, 4.5B from
    ``4.5B_*_config.json``), or a tiny random-weights architecture for tests and benches.

    ``tiny`` is 4.5B-shaped (GELU, 16 channels); use :func:`tiny_model_config` for a 24B-shaped tiny
    one (SwiGLU, half_channel_vae, x_rescale 0.1)."""
    v = variant.lower().replace("-", "_")
    if v not in VARIANTS:
        raise MagiConfigError(f"unknown MAGI-1 variant {variant!r}; known: {list(VARIANTS)}")
    distill = v.endswith("_distill")
    base = v.replace("_distill", "")
    model = {"24b": _M24, "4.5b": _M45, "tiny": _MTINY}[base]
    if base == "24b":
        rt = MagiRuntimeConfig(
            video_size_h=720,
            video_size_w=1280,
            num_steps=16 if distill else 32,
            t5_device="cuda",
            load="./downloads/24B_distill" if distill else "./downloads/24B_base",
        )
        eng = MagiEngineConfig(cp_size=8, cp_strategy="cp_ulysses", distill=distill, kv_offload=True)
    elif base == "4.5b":
        rt = MagiRuntimeConfig(
            video_size_h=720,
            video_size_w=720,
            num_steps=64,
            load="./downloads/4.5B_distill" if distill else "./downloads/4.5B_base",
        )
        eng = MagiEngineConfig(cp_size=1, cp_strategy="cp_ulysses", distill=distill, kv_offload=True)
    else:
        rt = MagiRuntimeConfig(video_size_h=32, video_size_w=32, num_frames=48, num_steps=8, fps=24)
        eng = MagiEngineConfig(distributed_backend="gloo", distill=distill)
    rt = dataclasses.replace(rt, cfg_number=1 if distill else 3)
    return MagiConfig(model, rt, eng).validate()


def tiny_model_config(**changes: Any) -> MagiModelConfig:
    """A tiny architecture; ``tiny_model_config(gated_linear_unit=True, half_channel_vae=True,
    in_channels=32, out_channels=32, x_rescale_factor=0.1)`` mirrors the 24B layout."""
    m = dataclasses.replace(_MTINY, **changes)
    m.validate()
    return m
