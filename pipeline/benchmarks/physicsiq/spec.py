"""Physics-IQ: its ``benchmark.*`` schema and registry entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pipeline.registry import Spec

from ..base import BenchmarkConfig


@dataclass
class PhysicsIQConfig(BenchmarkConfig):
    """A dataset folder in the official Physics-IQ layout."""

    run_key_type: ClassVar[str] = "BenchmarkConfig"  # its name before the registry: run folders keep their keys

    name: str = "physicsiq"
    descriptions: str | None = None  # descriptions.csv; default: inside or beside the root


SPEC = Spec("physicsiq", PhysicsIQConfig, "pipeline.benchmarks.physicsiq.benchmark:PhysicsIQBenchmark")
