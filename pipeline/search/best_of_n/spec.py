"""Best-of-N: its ``search.*`` schema and registry entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pipeline.fields import at_least, setting
from pipeline.registry import Spec

from ..base import SearchConfig


@dataclass
class BestOfNConfig(SearchConfig):
    run_key_type: ClassVar[str] = "SearchConfig"  # its name before the registry: run folders keep their keys
    name: str = "best_of_n"
    n: int = setting(4, check=at_least(1))  # candidates per item
    base_seed: int = setting(0, check=at_least(0))  # candidate k uses seed base_seed + k


SPEC = Spec("best_of_n", BestOfNConfig, "pipeline.search.best_of_n.strategy:BestOfN")
