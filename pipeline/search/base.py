"""Fields every search strategy's config has; each strategy subclasses it with its own knobs."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class SearchConfig:
    name: str = MISSING  # the registry entry (pipeline/search/<folder>/spec.py)
