"""Video generators, found by ``generator.kind``: one registry entry per engine.

Every engine lives in its own folder here and declares itself in that folder's ``spec.py``
(``SPEC = GeneratorSpec(kind, ConfigClass, "module:EngineClass")``); the registry is the set of
those files, so adding a generator touches its own folder and one YAML in ``conf/generator/``.
Specs import no torch; an engine module is imported only when a model is built.

    generator_from_config(cfg.generator, device="cuda")
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Any

from .base import (
    GenerationRequest,
    Generator,
    GeneratorConfig,
    GeneratorConfigError,
    GeneratorLoadError,
    GeneratorSpec,
    StepHook,
    StepInfo,
)


@cache
def generator_specs() -> dict[str, GeneratorSpec]:
    """kind -> spec, from every ``pipeline/generators/<engine>/spec.py``."""
    specs: dict[str, GeneratorSpec] = {}
    for module in pkgutil.iter_modules(__path__):
        if not module.ispkg:
            continue
        name = f"{__name__}.{module.name}.spec"
        try:
            spec = importlib.import_module(name).SPEC
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a folder that is not an engine
                continue
            raise
        if spec.kind in specs:
            raise ValueError(f"generator kind {spec.kind!r} is declared twice")
        specs[spec.kind] = spec
    return specs


def available_generators() -> list[str]:
    return sorted(generator_specs())


def generator_class(kind: str) -> type[Generator]:
    """The engine registered as ``kind`` (imported on first use; no model is loaded)."""
    try:
        spec = generator_specs()[kind]
    except KeyError:
        raise ValueError(f"unknown generator kind {kind!r}; available: {available_generators()}") from None
    module, _, attr = spec.engine.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_generator(kind: str, **kwargs: Any) -> Generator:
    """Instantiate the engine registered as ``kind`` with its own constructor arguments."""
    return generator_class(kind)(**kwargs)


def missing_checkpoint_files_for(cfg: GeneratorConfig) -> list[str]:
    """What the checkpoint named by ``cfg`` lacks (empty = looks complete); cheap, no model load."""
    return generator_class(cfg.kind).missing_checkpoint_files_for(cfg)


def generator_from_config(cfg: GeneratorConfig, device: str) -> Generator:
    """Build the engine named by ``cfg.kind`` from its config dataclass (each engine maps its own
    config fields in a ``from_config`` classmethod)."""
    return generator_class(cfg.kind).from_config(cfg, device=device)


__all__ = [
    "GenerationRequest",
    "Generator",
    "GeneratorConfig",
    "GeneratorConfigError",
    "GeneratorLoadError",
    "GeneratorSpec",
    "StepHook",
    "StepInfo",
    "available_generators",
    "build_generator",
    "generator_class",
    "generator_from_config",
    "generator_specs",
    "missing_checkpoint_files_for",
]
