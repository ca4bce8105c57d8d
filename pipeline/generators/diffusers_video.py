"""What the diffusers-backed engines (Wan, CogVideoX) share: checking a pipeline folder without
loading it, loading it from local files only (an optional fine-tuned transformer swapped in, the
velocity adapter attached), caching prompt embeddings, batching the candidates of one prompt and
condition into one pipeline call with one seeded ``torch.Generator`` each (so candidate k equals
the single run with its seed), the per-step latent hook, and guidance before every scheduler step.

An engine subclass names its pipeline class and says how to call it (``_call_pipe``), how a
scheduler step's prediction becomes the guide's velocity (``_step_state``) and how to decode
latents with the graph kept (``decode_pixels``).
"""

from __future__ import annotations

import gc
import inspect
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pipeline.dtypes import CANONICAL, dtype_name
from pipeline.weight_files import truncated_weights

from .base import (
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

TRANSFORMERS = ("transformer", "transformer_2")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def read_json(p: Path) -> dict:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def component_missing(root: Path, name: str) -> list[str]:
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
    elif not any(f.endswith(WEIGHT_SUFFIXES) for f in files):
        missing.append(f"{name}/<weights>.safetensors")
    for f in sorted(files):
        why = truncated_weights(d / f) if f.endswith(WEIGHT_SUFFIXES) else None
        if why:
            missing.append(f"{name}/{f} (truncated: {why})")
    return missing


def missing_pipeline_files(path: str | os.PathLike, required: tuple[str, ...]) -> list[str]:
    """What a diffusers pipeline folder lacks (empty = looks complete): ``model_index.json``, the
    ``required`` components and a transformer, and the files of every component it names. A
    two-expert folder (``boundary_ratio`` set, Wan 2.2 A14B) needs both transformers."""
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
    missing: list[str] = [f"model_index.json entry '{name}'" for name in required if name not in present]
    if not present & set(TRANSFORMERS):
        missing.append("model_index.json entry 'transformer'")
    elif index.get("boundary_ratio") is not None and not set(TRANSFORMERS) <= present:
        # the experts switch at the boundary: one missing expert is half a model
        missing.append(f"model_index.json entry '{sorted(set(TRANSFORMERS) - present)[0]}' (two-expert layout)")
    for name in sorted(present):
        missing.extend(component_missing(root, name))
    return missing


def _accepts_dtype_kw() -> bool:
    """diffusers >= 0.36 deprecates ``torch_dtype`` in favour of ``dtype`` (passed via **kwargs)."""
    try:
        from diffusers.utils import deprecation_utils

        return hasattr(deprecation_utils, "_resolve_dtype")
    except Exception:  # noqa: BLE001
        return False


class DiffusersVideoGenerator(Generator):
    """A diffusers video pipeline as a best-of-N friendly, steppable generator (see module doc).

    ``negative_prompt`` is the default for requests whose ``negative_prompt`` is empty. ``dtype``
    applies to the text encoder, image encoder and transformer(s); ``vae_dtype`` (``None`` = same
    as ``dtype``) to the VAE. ``transformer``: a folder whose transformer replaces the pipeline's
    (a fine-tuned checkpoint in diffusers format); ``adapter``: a velocity-field adapter folder.
    """

    steppable = True  # guidance acts before every scheduler step (DiffusersSession)
    pipeline_class: ClassVar[str] = ""
    transformer_class: ClassVar[str] = ""
    required_components: ClassVar[tuple[str, ...]] = ("tokenizer", "text_encoder", "vae", "scheduler")
    frames_first: ClassVar[bool] = False  # latents (B, F, C, H, W) rather than (B, C, F, H, W)

    @classmethod
    def missing_checkpoint_files(cls, path: str | os.PathLike) -> list[str]:
        return missing_pipeline_files(path, cls.required_components)

    @classmethod
    def missing_checkpoint_files_for(cls, cfg: Any) -> list[str]:
        return cls.missing_checkpoint_files(cfg.checkpoint)

    @classmethod
    def geometry_problems(cls, path: str | os.PathLike, width: int, height: int, num_frames: int) -> list[str]:
        return []

    @classmethod
    def common_problems(cls, cfg: Any) -> list[str]:
        from .adapter import adapter_folder_problems

        out = []
        if dtype_name(cfg.dtype) is None:
            out.append(f"generator.dtype={cfg.dtype!r} is not one of {list(CANONICAL)}")
        if getattr(cfg, "adapter", None) is not None:
            out += adapter_folder_problems(cfg.adapter)
        return out + cls.geometry_problems(cfg.checkpoint, cfg.width, cfg.height, cfg.num_frames)

    @classmethod
    def planned_frames(cls, cfg: Any, mode: str) -> int:
        """Frames every candidate has: the pipeline returns ``num_frames`` (the first is the image)."""
        return int(cfg.num_frames)

    @classmethod
    def planned_nfe(cls, cfg: Any, mode: str) -> int:
        """One transformer pass per step and row, two with classifier-free guidance (scale > 1)."""
        return int(cfg.steps) * (2 if cfg.guidance_scale > 1.0 else 1)

    @classmethod
    def planned_steps(cls, cfg: Any) -> int:
        return int(cfg.steps)

    @classmethod
    def from_config(cls, cfg: Any, device: str, mesh: Any = None) -> Any:
        """From the engine's config; the model runs whole on every rank (no ``mesh``)."""
        if mesh is not None:
            raise GeneratorConfigError(f"{cls.kind} runs whole on every rank; it cannot use a multi-rank replica")
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
            adapter=cfg.adapter,
            adapter_scale=cfg.adapter_scale,
            **cls.engine_kwargs(cfg),
        )

    @classmethod
    def engine_kwargs(cls, cfg: Any) -> dict[str, Any]:
        """The engine's own constructor arguments from its config (beyond the shared ones)."""
        return {}

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        num_frames: int,
        fps: float,
        num_inference_steps: int,
        guidance_scale: float,
        batch_size: int = 1,
        device: str = "cpu",
        dtype: str = "float32",
        vae_dtype: str | None = "float32",
        negative_prompt: str = "",
        max_sequence_length: int = 512,
        prompt_cache_size: int = 128,
        transformer: str | os.PathLike | None = None,
        adapter: str | os.PathLike | None = None,
        adapter_scale: float = 1.0,
    ) -> None:
        self.path = Path(path)
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

        missing = self.missing_checkpoint_files(self.path)
        if missing:
            raise GeneratorLoadError(
                f"{self.kind} checkpoint at '{self.path}' is missing or incomplete; missing: " + ", ".join(missing)
            )
        problems = self.geometry_problems(self.path, width, height, num_frames)
        if problems:
            raise GeneratorConfigError("; ".join(problems))

        self._width, self._height, self._num_frames, self._fps = int(width), int(height), int(num_frames), fps
        self.num_inference_steps = int(num_inference_steps)
        self.guidance_scale = float(guidance_scale)
        self.batch_size = int(batch_size)
        self.device = str(device)
        self.dtype_name, self.vae_dtype_name = dname, vname
        self.negative_prompt = negative_prompt
        self.max_sequence_length = int(max_sequence_length)
        self.prompt_cache_size = int(prompt_cache_size)
        self._embeds: OrderedDict[str, Any] = OrderedDict()
        self.num_prompt_encodings = 0  # text-encoder calls (for tests / logging)
        self.num_pipeline_calls = 0

        import torch

        self._torch = torch
        self.torch_dtype = getattr(torch, dname)
        self.pipe = self._load(transformer)
        self.adapter = None
        if adapter is not None:
            from .adapter import attach_adapter, load_adapter

            self.adapter = load_adapter(adapter, self.device, self.torch_dtype)
        self.experts = [n for n in TRANSFORMERS if getattr(self.pipe, n, None) is not None]
        for name in self.experts:  # Wan 2.2 A14B has a second, low-noise expert
            module = getattr(self.pipe, name)
            module.register_forward_pre_hook(self._count_pass, with_kwargs=True)
            if self.adapter is not None:
                attach_adapter(module, self.adapter, float(adapter_scale), frames_first=self.frames_first)

    def pipeline_class_name(self) -> str:
        """The diffusers pipeline class this folder loads as."""
        return self.pipeline_class

    def _load(self, transformer: str | os.PathLike | None) -> Any:
        import diffusers

        torch = self._torch
        pipeline_class = getattr(diffusers, self.pipeline_class_name())
        kw: dict[str, Any] = {"local_files_only": True}
        dt: Any = self.torch_dtype
        if self.vae_dtype_name != self.dtype_name:  # a VAE kept in fp32 for quality when the DiT runs in bf16
            dt = {"default": self.torch_dtype, "vae": getattr(torch, self.vae_dtype_name)}
        dtype_kw = "dtype" if _accepts_dtype_kw() else "torch_dtype"
        kw[dtype_kw] = dt
        try:
            if transformer is not None:
                sub = Path(transformer) / "transformer" if (Path(transformer) / "transformer").is_dir() else transformer
                kw["transformer"] = getattr(diffusers, self.transformer_class).from_pretrained(
                    str(sub), local_files_only=True, **{dtype_kw: self.torch_dtype}
                )
            pipe = pipeline_class.from_pretrained(str(self.path), **kw)
            pipe.to(self.device)
        except Exception as e:  # noqa: BLE001 - re-raise with the path
            where = f"'{self.path}'" + (f" with the transformer of '{transformer}'" if transformer else "")
            raise GeneratorLoadError(f"failed to load {self.pipeline_class_name()} from {where}: {e}") from e
        pipe.set_progress_bar_config(disable=True)
        return pipe

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
        return getattr(self.pipe, self.experts[0]).dtype

    def prompt_embeds(self, text: str):
        """``(1, L, D)`` text embeddings of ``text``, cached (LRU) per string."""
        hit = self._embeds.get(text)
        if hit is not None:
            self._embeds.move_to_end(text)
            return hit
        with self._torch.no_grad():
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
        """A :class:`~.diffusers_session.DiffusersSession` over ``requests`` (one prompt and
        condition, one row per seed) for a strategy acting inside the steps."""
        from .diffusers_session import DiffusersSession

        requests = session_requests(requests)
        for r in requests:
            self.check_request(r)
        return DiffusersSession(self, requests)

    def run_batch(self, reqs: list[GenerationRequest], guide=None) -> list[np.ndarray]:
        """One pipeline call over requests of one prompt and condition; ``guide`` acts before every
        scheduler step."""
        return self._run_chunk(reqs, list(range(len(reqs))), None, guide=guide)

    def decode_pixels(self, latent):
        """Latents (B, C, T, h, w) (the guide's layout) -> float frames (B, T, H, W, 3) on the
        0..255 scale with the graph kept."""
        raise NotImplementedError

    def _step_state(self, i: int, model_output, timestep, sample):
        """The guide's view of step ``i`` (a ``StepState``: t = 1 clean, clean estimate x + (1 - t) v,
        latents (B, C, T, h, w))."""
        raise NotImplementedError

    def _guided_step(self, guide):
        """``scheduler.step`` with the guide before it (installed on the instance for one call)."""
        sched = self.pipe.scheduler
        inner = type(sched).step.__get__(sched)
        signature = inspect.signature(type(sched).step)
        calls = [0]

        def step(*args, **kwargs):
            bound = signature.bind(sched, *args, **kwargs)
            i = calls[0]
            calls[0] += 1
            sample = bound.arguments["sample"]
            state = self._step_state(i, bound.arguments["model_output"], bound.arguments["timestep"], sample)
            moved = guide(state)
            if moved is not None:
                if self.frames_first:
                    moved = moved.transpose(1, 2)
                bound.arguments["sample"] = moved.to(dtype=sample.dtype)
            return inner(*bound.args[1:], **bound.kwargs)

        # pipelines pass eta and the seeded generators only to a step whose signature names them
        step.__signature__ = inspect.signature(inner)  # type: ignore[attr-defined]
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

    def _call_pipe(self, first: GenerationRequest, pos, neg, gens, kwargs) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        self._embeds.clear()
        if getattr(self, "pipe", None) is not None:
            self.pipe = None
            gc.collect()
            if self._torch.cuda.is_available():
                self._torch.cuda.empty_cache()
