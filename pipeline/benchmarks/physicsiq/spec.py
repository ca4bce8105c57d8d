"""Physics-IQ: its ``benchmark.*`` schema and registry entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pipeline.fields import one_of, operational
from pipeline.registry import Spec

from ..base import BenchmarkConfig


@dataclass
class PhysicsIQConfig(BenchmarkConfig):
    """A dataset folder in the official Physics-IQ layout."""

    run_key_type: ClassVar[str] = "BenchmarkConfig"  # its name before the registry: run folders keep their keys

    name: str = "physicsiq"
    descriptions: str | None = None  # descriptions.csv; default: inside or beside the root
    # The leaderboard whose ground truth ``root`` is: it names the scores (the Verified board's
    # score is the per-sample formula on its own ground truth), never changes them.
    board: str = operational("original", check=one_of("original", "verified"))


# Prompt sets the Physics-IQ datasets ship (benchmark.prompts=op|bpp): the original descriptions,
# and the best-practice prompts of the base templater, relative to the dataset root.
PROMPT_SETS = {"bpp": "descriptions/best_practice/descriptions_base.csv"}


SPEC = Spec("physicsiq", PhysicsIQConfig, "pipeline.benchmarks.physicsiq.benchmark:PhysicsIQBenchmark")
