"""Video generators, found by ``generator.kind``: one registry entry per engine.

Every engine lives in its own folder here and declares itself in that folder's ``spec.py``
(``SPEC = Spec(kind, ConfigClass, "module:EngineClass")``, see ``pipeline.registry``); adding a
generator touches its own folder and one YAML in ``conf/generator/``.

    generator_from_config(cfg.generator, device="cuda")
"""

from __future__ import annotations

from typing import Any

from pipeline.registry import Registry

from .base import (
    GenerationRequest,
    Generator,
    GeneratorConfig,
    GeneratorConfigError,
    GeneratorLoadError,
    StepHook,
    StepInfo,
)

GENERATORS = Registry("pipeline.generators", "generator", key="kind")


def generator_class(kind: str) -> type[Generator]:
    """The engine registered as ``kind`` (imported on first use; no model is loaded)."""
    return GENERATORS.implementation(kind)


def build_generator(kind: str, **kwargs: Any) -> Generator:
    """Instantiate the engine registered as ``kind`` with its own constructor arguments."""
    return generator_class(kind)(**kwargs)


def missing_checkpoint_files_for(cfg: GeneratorConfig) -> list[str]:
    """What the checkpoint named by ``cfg`` lacks (empty = looks complete); cheap, no model load."""
    return generator_class(cfg.kind).missing_checkpoint_files_for(cfg)


def generator_from_config(cfg: GeneratorConfig, device: str, mesh=None) -> Generator:
    """Build the engine named by ``cfg.kind`` from its config dataclass (each engine maps its own
    config fields in a ``from_config`` classmethod). ``mesh``: the DeviceMesh of a multi-rank
    replica, for an engine whose ``replica_dims`` spread a model copy over ranks."""
    cls = generator_class(cfg.kind)
    if mesh is None:
        return cls.from_config(cfg, device=device)
    if not cls.replica_dims(cfg):
        raise GeneratorConfigError(f"{cfg.kind} runs whole on every rank; it cannot use a multi-rank replica")
    return cls.from_config(cfg, device=device, mesh=mesh)


__all__ = [
    "GENERATORS",
    "GenerationRequest",
    "Generator",
    "GeneratorConfig",
    "GeneratorConfigError",
    "GeneratorLoadError",
    "StepHook",
    "StepInfo",
    "build_generator",
    "generator_class",
    "generator_from_config",
    "missing_checkpoint_files_for",
]
