"""Wan 2.1 / 2.2 image-to-video generator on top of diffusers' ``WanImageToVideoPipeline``.

Loads a local diffusers-format folder (never downloads), caches T5 prompt
embeddings per prompt string, batches the candidates of one prompt/image into a
single pipeline call with one ``torch.Generator`` per candidate (so candidate k
equals the single run with its seed), exposes a per-step latent hook through
``callback_on_step_end`` and returns uint8 frames.
"""

from __future__ import annotations

import gc
import inspect
import json
import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.dtypes import CANONICAL, dtype_name
from pipeline.weight_files import truncated_weights

from ..base import (
    GenerationRequest,
    Generator,
    GeneratorConfigError,
    GeneratorLoadError,
    StepHook,
    StepInfo,
    float_frames_to_uint8,
    group_requests,
    session_requests,
)
from .spec import WanI2VGeneratorConfig

__all__ = [
    "WanI2VGenerator",
    "GeneratorLoadError",
    "GeneratorConfigError",
    "missing_checkpoint_files",
    "DEFAULT_NEGATIVE_PROMPT",
]

# Standard English negative prompt of the Wan I2V examples.
DEFAULT_NEGATIVE_PROMPT = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, "
    "overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, "
    "poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, "
    "messy background, three legs, many people in the background, walking backwards"
)


_REQUIRED_COMPONENTS = ("tokenizer", "text_encoder", "vae", "scheduler")
_TRANSFORMERS = ("transformer", "transformer_2")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def _component_missing(root: Path, name: str) -> list[str]:
    """Files missing for component folder ``root/name`` (relative paths)."""
    d = root / name
    if not d.is_dir():
        return [f"{name}/"]
    files = {p.name for p in d.iterdir() if p.is_file()}
    if name == "scheduler":
        return [] if "scheduler_config.json" in files else [f"{name}/scheduler_config.json"]
    if name == "tokenizer":
        ok = files & {"tokenizer.json", "spiece.model", "tokenizer.model", "vocab.json", "vocab.txt"}
        return [] if ok else [f"{name}/tokenizer.json (or spiece.model)"]
    if name in ("image_processor", "feature_extractor"):
        return [] if "preprocessor_config.json" in files else [f"{name}/preprocessor_config.json"]
    missing = []
    if "config.json" not in files:
        missing.append(f"{name}/config.json")
    indexes = [f for f in files if f.endswith(".index.json")]
    if indexes:
        for ix in indexes:
            try:
                shards = set(json.loads((d / ix).read_text()).get("weight_map", {}).values())
            except (OSError, ValueError):
                missing.append(f"{name}/{ix} (unreadable)")
                continue
            missing.extend(f"{name}/{s}" for s in sorted(shards) if s not in files)
    elif not any(f.endswith(_WEIGHT_SUFFIXES) for f in files):
        missing.append(f"{name}/<weights>.safetensors")
    for f in sorted(files):
        why = truncated_weights(d / f) if f.endswith(_WEIGHT_SUFFIXES) else None
        if why:
            missing.append(f"{name}/{f} (truncated: {why})")
    return missing


def missing_checkpoint_files(path: str | os.PathLike) -> list[str]:
    """List what a diffusers Wan I2V folder lacks (empty list = looks complete).

    Checks ``model_index.json`` and, for each component it names, the component
    folder with its config and weight files (incl. shards of an index).
    """
    root = Path(path)
    if not root.is_dir():
        return [f"{root} (folder does not exist)"]
    mi = root / "model_index.json"
    if not mi.is_file():
        return ["model_index.json"]
    try:
        index = json.loads(mi.read_text())
    except (OSError, ValueError) as e:
        return [f"model_index.json (unreadable: {e})"]
    present = {
        k
        for k, v in index.items()
        if not k.startswith("_") and isinstance(v, list) and len(v) == 2 and v[0] is not None
    }
    missing: list[str] = []
    for name in _REQUIRED_COMPONENTS:
        if name not in present:
            missing.append(f"model_index.json entry '{name}'")
    if not present & set(_TRANSFORMERS):
        missing.append("model_index.json entry 'transformer'")
    elif index.get("boundary_ratio") is not None and not set(_TRANSFORMERS) <= present:
        # Wan 2.2 A14B switches experts at the boundary: one missing expert is half a model
        missing.append(f"model_index.json entry '{sorted(set(_TRANSFORMERS) - present)[0]}' (two-expert layout)")
    for name in sorted(present):
        missing.extend(_component_missing(root, name))
    return missing


def _read_json(p: Path) -> dict:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def geometry_problems(path: str | os.PathLike, width: int, height: int, num_frames: int) -> list[str]:
    """Sizes and frame counts the checkpoint's VAE and transformer can make (their config.json
    factors; Wan 2.1/2.2 I2V defaults while the folder is not there): one entry per key."""
    root = Path(path)
    vae_cfg = _read_json(root / "vae" / "config.json")
    t_name = "transformer" if (root / "transformer").is_dir() else "transformer_2"
    tr_cfg = _read_json(root / t_name / "config.json")
    t_factor = int(vae_cfg.get("scale_factor_temporal") or 4)
    s_factor = int(vae_cfg.get("scale_factor_spatial") or 8)
    patch = tr_cfg.get("patch_size") or [1, 2, 2]
    size_mult_h = math.lcm(16, s_factor * int(patch[1]))
    size_mult_w = math.lcm(16, s_factor * int(patch[2]))
    out = []
    if (num_frames - 1) % t_factor != 0:
        lo = (num_frames - 1) // t_factor * t_factor + 1
        out.append(f"generator.num_frames={num_frames}: Wan makes {t_factor}k+1 frames (e.g. {lo} or {lo + t_factor})")
    if height % size_mult_h or width % size_mult_w:
        out.append(
            f"generator.width x generator.height={width}x{height}: must be multiples of "
            f"{size_mult_w} x {size_mult_h} (VAE spatial factor {s_factor} x patch size {list(patch)[1:]})"
        )
    return out


class WanI2VGenerator(Generator):
    """Best-of-N friendly wrapper around ``WanImageToVideoPipeline``.

    ``negative_prompt`` is the default used for requests whose
    ``negative_prompt`` is empty.  ``dtype`` applies to the text encoder, image
    encoder and transformer(s); ``vae_dtype`` (default fp32, as the Wan examples
    recommend; ``None`` = same as ``dtype``) to the VAE.  ``batch_size`` is the maximum number of
    candidates (same prompt and condition image) run in one pipeline call.
    """

    kind = "wan_i2v"
    steppable = True  # guidance acts before every scheduler step (session.py)

    @classmethod
    def missing_checkpoint_files_for(cls, cfg: WanI2VGeneratorConfig) -> list[str]:
        return missing_checkpoint_files(cfg.checkpoint)

    @classmethod
    def settings_problems(cls, cfg: WanI2VGeneratorConfig) -> list[str]:
        """What is wrong with a ``WanI2VGeneratorConfig`` before any weight is read (one entry per key)."""
        from ..adapter import adapter_folder_problems

        out = []
        if dtype_name(cfg.dtype) is None:
            out.append(f"generator.dtype={cfg.dtype!r} is not one of {list(CANONICAL)}")
        index = _read_json(Path(cfg.checkpoint) / "model_index.json")
        if cfg.guidance_scale_2 is not None and index and index.get("boundary_ratio") is None:
            out.append(
                f"generator.guidance_scale_2={cfg.guidance_scale_2}: {cfg.checkpoint} has one transformer "
                "(no boundary_ratio in model_index.json); the low-noise expert's scale is for Wan 2.2 A14B"
            )
        if cfg.adapter is not None:
            out += adapter_folder_problems(cfg.adapter)
        return out + geometry_problems(cfg.checkpoint, cfg.width, cfg.height, cfg.num_frames)

    @classmethod
    def planned_frames(cls, cfg: WanI2VGeneratorConfig, mode: str) -> int:
        """Frames every candidate has: the pipeline returns ``num_frames`` (the first is the image)."""
        return int(cfg.num_frames)

    @classmethod
    def planned_nfe(cls, cfg: WanI2VGeneratorConfig, mode: str) -> int:
        """One transformer pass per step, two with classifier-free guidance (scale > 1)."""
        return int(cfg.steps) * (2 if cfg.guidance_scale > 1.0 else 1)

    @classmethod
    def planned_steps(cls, cfg: WanI2VGeneratorConfig) -> int:
        return int(cfg.steps)

    @classmethod
    def from_config(cls, cfg: WanI2VGeneratorConfig, device: str, mesh: Any = None) -> WanI2VGenerator:
        """From its ``WanI2VGeneratorConfig``; the model runs whole on every rank (no ``mesh``)."""
        if mesh is not None:
            raise GeneratorConfigError("Wan I2V runs whole on every rank; it cannot use a multi-rank replica")
        return cls(
            cfg.checkpoint,
            width=cfg.width,
            height=cfg.height,
            num_frames=cfg.num_frames,
            fps=cfg.fps,
            num_inference_steps=cfg.steps,
            guidance_scale=cfg.guidance_scale,
            negative_prompt=cfg.negative_prompt,
            batch_size=cfg.batch_size,
            device=device,
            dtype=cfg.dtype,
            guidance_scale_2=cfg.guidance_scale_2,
            adapter=cfg.adapter,
            adapter_scale=cfg.adapter_scale,
        )

    def __init__(
        self,
        path: str | os.PathLike,
        width: int = 832,
        height: int = 480,
        num_frames: int = 81,
        fps: float = 16,
        num_inference_steps: int = 40,
        guidance_scale: float = 5.0,
        batch_size: int = 1,
        device: str = "cpu",
        dtype: str = "float32",
        vae_dtype: str | None = "float32",
        negative_prompt: str = DEFAULT_NEGATIVE_PROMPT,
        guidance_scale_2: float | None = None,
        max_sequence_length: int = 512,
        prompt_cache_size: int = 128,
        adapter: str | os.PathLike | None = None,
        adapter_scale: float = 1.0,
    ) -> None:
        self.path = Path(path)
        # ---- settings that do not depend on the checkpoint
        for name, v in (
            ("width", width),
            ("height", height),
            ("num_frames", num_frames),
            ("num_inference_steps", num_inference_steps),
            ("batch_size", batch_size),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise GeneratorConfigError(f"{name} must be a positive int, got {v!r}")
        if not (isinstance(fps, (int, float)) and fps > 0):
            raise GeneratorConfigError(f"fps must be > 0, got {fps!r}")
        dname = dtype_name(dtype)
        if dname is None:
            raise GeneratorConfigError(f"unsupported dtype {dtype!r}; use one of {list(CANONICAL)}")
        vname = dname if vae_dtype is None else dtype_name(vae_dtype)
        if vname is None:
            raise GeneratorConfigError(f"unsupported vae_dtype {vae_dtype!r}")

        # ---- checkpoint completeness (before touching diffusers)
        missing = missing_checkpoint_files(self.path)
        if missing:
            raise GeneratorLoadError(
                f"Wan I2V checkpoint at '{self.path}' is missing or incomplete; missing: " + ", ".join(missing)
            )

        # ---- settings that depend on the checkpoint's VAE / transformer factors
        problems = geometry_problems(self.path, width, height, num_frames)
        if problems:
            raise GeneratorConfigError("; ".join(problems))

        self._width, self._height, self._num_frames, self._fps = int(width), int(height), int(num_frames), fps
        self.num_inference_steps = int(num_inference_steps)
        self.guidance_scale = float(guidance_scale)
        self.guidance_scale_2 = None if guidance_scale_2 is None else float(guidance_scale_2)
        self.batch_size = int(batch_size)
        self.device = str(device)
        self.dtype_name = dname
        self.vae_dtype_name = vname
        self.negative_prompt = negative_prompt
        self.max_sequence_length = int(max_sequence_length)
        self.prompt_cache_size = int(prompt_cache_size)
        self._embeds: OrderedDict[str, Any] = OrderedDict()
        self.num_prompt_encodings = 0  # text-encoder calls (for tests / logging)
        self.num_pipeline_calls = 0

        # ---- load
        import torch
        from diffusers import WanImageToVideoPipeline

        self._torch = torch
        self.torch_dtype = getattr(torch, dname)
        kw: dict[str, Any] = {"local_files_only": True}
        dt: Any = self.torch_dtype
        if vname != dname:  # Wan keeps its VAE in fp32 for quality when the DiT runs in bf16
            dt = {"default": self.torch_dtype, "vae": getattr(torch, vname)}
        params = inspect.signature(WanImageToVideoPipeline.from_pretrained).parameters
        if "dtype" in params or _accepts_dtype_kw():
            kw["dtype"] = dt
        else:
            kw["torch_dtype"] = dt
        try:
            pipe = WanImageToVideoPipeline.from_pretrained(str(self.path), **kw)
            pipe.to(self.device)
        except Exception as e:  # noqa: BLE001 - re-raise with the path
            raise GeneratorLoadError(f"failed to load Wan I2V pipeline from '{self.path}': {e}") from e
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe
        self.adapter = None
        if adapter is not None:
            from ..adapter import load_adapter

            self.adapter = load_adapter(adapter, self.device, self.torch_dtype)
        self.experts = [n for n in ("transformer", "transformer_2") if getattr(pipe, n, None) is not None]
        for name in self.experts:  # Wan 2.2 A14B has a second, low-noise expert
            module = getattr(pipe, name)
            module.register_forward_pre_hook(self._count_pass, with_kwargs=True)
            if self.adapter is not None:
                from ..adapter import attach_adapter

                attach_adapter(module, self.adapter, float(adapter_scale))

    def _count_pass(self, module, args, kwargs) -> None:
        """Every transformer forward adds its rows to ``nfe`` (CFG's unconditional pass included)."""
        x = kwargs.get("hidden_states", args[0] if args else None)
        self.nfe += int(x.shape[0]) if x is not None else 0

    # ----------------------------------------------------------- properties
    @property
    def width(self) -> int:
        return self._width

    @property
    def height(self) -> int:
        return self._height

    @property
    def frames_out(self) -> int:
        return self._num_frames

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def do_cfg(self) -> bool:
        return self.guidance_scale > 1.0

    # ------------------------------------------------------------- prompts
    def _model_dtype(self):
        tr = self.pipe.transformer if self.pipe.transformer is not None else self.pipe.transformer_2
        return tr.dtype

    def prompt_embeds(self, text: str):
        """``(1, L, D)`` T5 embeddings of ``text``, cached (LRU) per string."""
        hit = self._embeds.get(text)
        if hit is not None:
            self._embeds.move_to_end(text)
            return hit
        torch = self._torch
        with torch.no_grad():
            emb, _ = self.pipe.encode_prompt(
                prompt=text,
                do_classifier_free_guidance=False,
                num_videos_per_prompt=1,
                max_sequence_length=self.max_sequence_length,
                device=self.pipe._execution_device,
            )
        emb = emb.to(self._model_dtype())
        self.num_prompt_encodings += 1
        self._embeds[text] = emb
        while len(self._embeds) > self.prompt_cache_size:
            self._embeds.popitem(last=False)
        return emb

    # ------------------------------------------------------------ generate
    def generate(self, requests: list[GenerationRequest], on_step: StepHook | None = None) -> list[np.ndarray]:
        requests = list(requests)
        for r in requests:
            self.check_request(r)
        out: list[np.ndarray | None] = [None] * len(requests)
        for chunk in group_requests(requests, self.batch_size):
            videos = self._run_chunk([requests[i] for i in chunk], chunk, on_step)
            for i, v in zip(chunk, videos):
                out[i] = v
        return out  # type: ignore[return-value]

    def start(self, requests: list[GenerationRequest]):
        """A :class:`~.session.WanSession` over ``requests`` (one prompt and condition, one row per
        seed) for a strategy acting inside the steps."""
        from .session import WanSession

        requests = session_requests(requests)
        for r in requests:
            self.check_request(r)
        return WanSession(self, requests)

    def run_batch(self, reqs: list[GenerationRequest], guide=None) -> list[np.ndarray]:
        """One pipeline call over requests of one prompt and condition; ``guide`` (see
        ``session.py``) acts before every scheduler step."""
        return self._run_chunk(reqs, list(range(len(reqs))), None, guide=guide)

    def _latent_stats(self, latents):
        vae = self.pipe.vae
        shape = (1, vae.config.z_dim, 1, 1, 1)
        mean = self._torch.tensor(vae.config.latents_mean).view(shape).to(latents.device, latents.dtype)
        std = self._torch.tensor(vae.config.latents_std).view(shape).to(latents.device, latents.dtype)
        return mean, std

    def decode_pixels(self, latent):
        """Latents (B, z, t, h, w) as the pipeline holds them -> float frames (B, T, H, W, 3) on the
        0..255 scale with the graph kept: the pipeline's own decode and [-1, 1] -> [0, 1] mapping,
        not rounded."""
        vae = self.pipe.vae
        z = latent.to(device=vae.device, dtype=vae.dtype)
        mean, std = self._latent_stats(z)
        video = vae.decode(z * std + mean, return_dict=False)[0]
        self.vae_decodes += int(latent.shape[0])
        return ((video.float() / 2 + 0.5).clamp(0, 1) * 255.0).permute(0, 2, 3, 4, 1)

    def _guided_step(self, guide):
        """``scheduler.step`` with the guide before it (installed on the instance for one call)."""
        from ..magi1.sampler import StepState

        torch, sched, n = self._torch, self.pipe.scheduler, self.num_inference_steps
        inner = type(sched).step.__get__(sched)
        calls = [0]

        def step(model_output, timestep, sample, *args, **kwargs):
            i = calls[0]
            calls[0] += 1
            sigma = float(sched.sigmas[i])
            x = sample.float()
            state = StepState(i, (0,), (i,), torch.tensor([1.0 - sigma]), x, -model_output.float(), x.shape[2], n)
            moved = guide(state)
            if moved is not None:
                sample = moved.to(dtype=sample.dtype)
            return inner(model_output, timestep, sample, *args, **kwargs)

        return step

    def _run_chunk(
        self, reqs: list[GenerationRequest], indices: list[int], on_step: StepHook | None, guide=None
    ) -> list[np.ndarray]:
        torch = self._torch
        first = reqs[0]
        n = len(reqs)
        seeds = tuple(int(r.seed) for r in reqs)
        pos = self.prompt_embeds(first.prompt).repeat(n, 1, 1)
        neg = None
        if self.do_cfg:
            neg = self.prompt_embeds(first.negative_prompt or self.negative_prompt).repeat(n, 1, 1)
        # CPU generators: identical noise whatever the device, one per candidate.
        gens = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]

        kwargs: dict[str, Any] = {}
        if on_step is not None:
            num_steps = self.num_inference_steps

            def _cb(pipe, i, t, cb_kwargs):
                lat = cb_kwargs["latents"]
                info = StepInfo(
                    step=int(i),
                    num_steps=num_steps,
                    timestep=float(t),
                    latents=lat,
                    seeds=seeds,
                    request_indices=tuple(indices),
                    prompt=first.prompt,
                )
                new = on_step(info)
                if new is None:
                    return {}
                if not isinstance(new, torch.Tensor) or tuple(new.shape) != tuple(lat.shape):
                    raise ValueError(
                        f"on_step must return None or a tensor of shape {tuple(lat.shape)}, "
                        f"got {getattr(new, 'shape', type(new))}"
                    )
                return {"latents": new.to(device=lat.device, dtype=lat.dtype)}

            kwargs["callback_on_step_end"] = _cb
            kwargs["callback_on_step_end_tensor_inputs"] = ["latents"]
        if self.guidance_scale_2 is not None:
            kwargs["guidance_scale_2"] = self.guidance_scale_2
        if guide is not None:
            self.pipe.scheduler.step = self._guided_step(guide)
        try:
            video = self._call_pipe(first, pos, neg, gens, kwargs)
        finally:
            self.pipe.scheduler.__dict__.pop("step", None)
        self.num_pipeline_calls += 1
        self.vae_decodes += n
        video = np.asarray(video)
        expected = (n, self._num_frames, self._height, self._width, 3)
        if video.shape != expected:
            raise RuntimeError(f"pipeline returned shape {video.shape}, expected {expected}")
        return [float_frames_to_uint8(v) for v in video]

    def _call_pipe(self, first, pos, neg, gens, kwargs):
        import PIL.Image

        return self.pipe(
            image=PIL.Image.fromarray(np.ascontiguousarray(first.condition)),
            prompt=None,
            negative_prompt=None,
            prompt_embeds=pos,
            negative_prompt_embeds=neg,
            height=self._height,
            width=self._width,
            num_frames=self._num_frames,
            num_inference_steps=self.num_inference_steps,
            guidance_scale=self.guidance_scale,
            generator=gens,
            output_type="np",
            return_dict=False,
            **kwargs,
        )[0]

    def close(self) -> None:
        self._embeds.clear()
        if getattr(self, "pipe", None) is not None:
            self.pipe = None
            gc.collect()
            if self._torch.cuda.is_available():
                self._torch.cuda.empty_cache()


def _accepts_dtype_kw() -> bool:
    """diffusers >= 0.36 deprecates ``torch_dtype`` in favour of ``dtype`` (passed via **kwargs)."""
    try:
        from diffusers.utils import deprecation_utils

        return hasattr(deprecation_utils, "_resolve_dtype")
    except Exception:  # noqa: BLE001
        return False
