"""Velocity-field adapters: a small trained module that adds its correction to a frozen video
model's prediction (velocity or noise, whatever the backbone predicts) at every denoising step,
from the step's model input, timestep and text embedding. This is how physics adapters attach to a
frozen backbone (PILA, ProPhy on Wan and CogVideoX); the generator option ``generator.adapter``
loads one and ``generator.adapter_scale`` weighs it.

An adapter folder holds ``adapter_config.json`` and ``adapter.safetensors``. The config names the
module class (``"class": "package.module:Class"``, default :class:`~.velocity_adapter.VelocityAdapter`) and its
constructor arguments (``"kwargs"``); the class's ``forward(x, t, text)`` takes the transformer's
input ``x`` (B, C_in, T, H, W), its timestep ``t`` (B,) (per-token timesteps are reduced to their
maximum, the noisy tokens' value) and the text embedding (B, L, D), and returns (B, C_out, T, H, W)
added to the prediction. It is attached with a forward hook on the transformer (both experts of
Wan 2.2), so every pass, classifier-free guidance's unconditional one included, gets its own
correction, as if the backbone itself had been fine-tuned.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.files import atomic_write_text
from pipeline.weight_files import truncated_weights

from .base import GeneratorConfigError, GeneratorLoadError

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter.safetensors"
DEFAULT_CLASS = "pipeline.generators.velocity_adapter:VelocityAdapter"

if TYPE_CHECKING:  # torch is imported on use: the folder checks run before any work, without it
    import torch
    from torch import nn


def adapter_folder_problems(path: str | os.PathLike) -> list[str]:
    root = Path(path)
    if not root.is_dir():
        return [f"generator.adapter={path}: not a folder"]
    out = [f"generator.adapter={path}: no {f}" for f in (CONFIG_FILE, WEIGHTS_FILE) if not (root / f).is_file()]
    if (root / WEIGHTS_FILE).is_file() and (why := truncated_weights(root / WEIGHTS_FILE)):
        out.append(f"generator.adapter={path}: {WEIGHTS_FILE} truncated ({why})")
    return out


def save_adapter(module: nn.Module, kwargs: dict[str, Any], path: str | os.PathLike, cls: str = DEFAULT_CLASS) -> Path:
    """Write ``module`` (built as ``cls(**kwargs)``) as an adapter folder."""
    from safetensors.torch import save_file

    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    save_file(state, str(root / WEIGHTS_FILE))
    atomic_write_text(root / CONFIG_FILE, json.dumps({"class": cls, "kwargs": kwargs}, indent=2, sort_keys=True))
    return root


def load_adapter(path: str | os.PathLike, device: Any, dtype: torch.dtype) -> nn.Module:
    """The adapter of folder ``path``, its weights loaded strictly, frozen, on ``device``."""
    from safetensors.torch import load_file

    bad = adapter_folder_problems(path)
    if bad:
        raise GeneratorLoadError("; ".join(bad))
    root = Path(path)
    try:
        spec = json.loads((root / CONFIG_FILE).read_text())
        module_name, _, attr = spec.get("class", DEFAULT_CLASS).partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
        adapter = cls(**spec.get("kwargs", {}))
        adapter.load_state_dict(load_file(str(root / WEIGHTS_FILE)), strict=True)
    except Exception as exc:  # noqa: BLE001 - any failure names the folder
        raise GeneratorLoadError(f"generator.adapter={path}: cannot build the adapter: {exc}") from exc
    return adapter.to(device=device, dtype=dtype).eval().requires_grad_(False)


def attach_adapter(transformer: nn.Module, adapter: nn.Module, scale: float, frames_first: bool = False) -> Any:
    """Add ``scale * adapter(x, t, text)`` to every output of ``transformer`` (a diffusers video
    transformer called with keyword inputs); returns the hook handle. ``frames_first``: the
    backbone's tensors are (B, T, C, H, W) (CogVideoX); the adapter always sees (B, C, T, H, W)."""

    def hook(module, args, kwargs, output):
        x = kwargs.get("hidden_states", args[0] if args else None)
        if frames_first:
            x = x.transpose(1, 2)
        t = kwargs["timestep"]
        text = kwargs["encoder_hidden_states"]
        if t.ndim > 1:  # per-token timesteps (Wan 2.2 TI2V): the noisy tokens' t
            t = t.reshape(t.shape[0], -1).amax(dim=1)
        elif t.ndim == 0:
            t = t.expand(x.shape[0])
        pred = output[0] if isinstance(output, tuple) else output.sample
        correction = adapter(x, t, text)
        if frames_first:
            correction = correction.transpose(1, 2)
        if correction.shape != pred.shape:
            raise GeneratorConfigError(
                f"generator.adapter: the adapter returns {tuple(correction.shape)}, the model predicts "
                f"{tuple(pred.shape)}; its in/out channels do not fit this backbone"
            )
        pred = pred + scale * correction.to(pred.dtype)
        if isinstance(output, tuple):
            return (pred, *output[1:])
        output.sample = pred
        return output

    return transformer.register_forward_hook(hook, with_kwargs=True)
