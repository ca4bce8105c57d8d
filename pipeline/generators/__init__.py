"""Video generators: a small registry so engines (Wan I2V via diffusers, later
MAGI-1, ...) are built by name from config.

    gen = build_generator("wan_i2v", path=..., width=..., ...)

Engines are registered lazily ("module:attr" strings) so importing this package
does not import torch/diffusers.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import (
    GenerationRequest,
    Generator,
    GeneratorConfigError,
    GeneratorLoadError,
    StepHook,
    StepInfo,
)

Factory = type[Generator]
_REGISTRY: dict[str, str | Factory] = {
    "wan_i2v": "pipeline.generators.diffusers_i2v:WanI2VGenerator",
    "magi1": "pipeline.generators.magi1.engine:Magi1Generator",
}


def register_generator(kind: str, factory: str | Factory | None = None, *, overwrite: bool = False):
    """Register ``factory`` (a callable or a lazy "module:attr" string) under ``kind``.
    Usable as a decorator: ``@register_generator("magi1")``."""

    def _do(f):
        if kind in _REGISTRY and not overwrite and _REGISTRY[kind] != f:
            raise ValueError(f"generator kind {kind!r} is already registered")
        _REGISTRY[kind] = f
        return f

    return _do if factory is None else _do(factory)


def available_generators() -> list[str]:
    return sorted(_REGISTRY)


def generator_class(kind: str) -> Factory:
    """The engine registered as ``kind`` (imported on first use; no model is loaded)."""
    return _resolve(kind)


def _resolve(kind: str) -> Factory:
    try:
        f = _REGISTRY[kind]
    except KeyError:
        raise ValueError(f"unknown generator kind {kind!r}; available: {available_generators()}") from None
    if isinstance(f, str):
        mod, _, attr = f.partition(":")
        f = getattr(importlib.import_module(mod), attr)
    return f


def build_generator(kind: str, **kwargs: Any) -> Generator:
    """Instantiate the generator registered as ``kind`` with ``kwargs``."""
    return _resolve(kind)(**kwargs)


def missing_checkpoint_files_for(cfg: Any) -> list[str]:
    """What the checkpoint named by ``cfg`` lacks (empty = looks complete); cheap, no model load."""
    return _resolve(cfg.kind).missing_checkpoint_files_for(cfg)


def generator_from_config(cfg: Any, device: str) -> Generator:
    """Build the engine named by ``cfg.kind`` from its config dataclass (each engine maps its own
    config fields in a ``from_config`` classmethod)."""
    return _resolve(cfg.kind).from_config(cfg, device=device)


__all__ = [
    "GenerationRequest",
    "Generator",
    "GeneratorConfigError",
    "GeneratorLoadError",
    "StepHook",
    "StepInfo",
    "available_generators",
    "build_generator",
    "generator_class",
    "generator_from_config",
    "missing_checkpoint_files_for",
    "register_generator",
]
