"""Benchmarks the pipeline can run, found by ``benchmark.name``: one registry entry per benchmark,
declared in its folder's ``spec.py`` (see ``pipeline.registry``). A registered benchmark is a class
built from the root config (it checks the generator against its contract) whose ``items()`` are
the run's items.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.registry import Registry

from .base import BenchmarkConfig

if TYPE_CHECKING:
    from pipeline.config import Config

BENCHMARKS = Registry("pipeline.benchmarks", "benchmark")


def load_benchmark(cfg: Config) -> Any:
    return BENCHMARKS.of(cfg.benchmark)(cfg)


__all__ = ["BENCHMARKS", "BenchmarkConfig", "load_benchmark"]
