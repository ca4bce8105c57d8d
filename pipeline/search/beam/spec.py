"""Beam search at chunk boundaries: its ``search.*`` schema and registry entry."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.fields import at_least, setting
from pipeline.registry import Spec

from ..base import SearchConfig


@dataclass
class BeamConfig(SearchConfig):
    name: str = "beam"
    beams: int = setting(2, check=at_least(1))  # candidates kept at every chunk boundary
    children: int = setting(2, check=at_least(1))  # continuations of each kept candidate
    base_seed: int = setting(0, check=at_least(0))  # starting row k uses seed base_seed + k


SPEC = Spec("beam", BeamConfig, "pipeline.search.beam.strategy:Beam")
