"""Beam search at chunk boundaries: beams x children rows; at every boundary the ``beams`` videos
with the lowest surprise so far are kept and each continues as ``children`` rows (the first with
its own noise, the others with fresh noise where no step has been). The final beams x children
candidates go to score and select."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base import Found, Strategy
from ..chunk_search import chunk_search, needs_chunk_sessions, needs_whole_windows
from .spec import BeamConfig


def lowest_first(surprises: np.ndarray) -> list[int]:
    """Row indices by surprise, lowest first; a non-finite surprise last; ties by row."""
    return sorted(range(len(surprises)), key=lambda i: (not np.isfinite(surprises[i]), surprises[i], i))


class Beam(Strategy):
    in_loop = True

    @staticmethod
    def num_candidates(cfg: BeamConfig) -> int:
        return cfg.beams * cfg.children

    @staticmethod
    def problems(cfg: BeamConfig, generator_class: type, reward_cfg: Any, generator_cfg: Any = None) -> list[str]:
        return needs_chunk_sessions("beam", generator_class) + needs_whole_windows("beam", reward_cfg)

    @staticmethod
    def run(cfg: BeamConfig, generator, request, scorer) -> Found:
        def decide(boundary: int, surprises: np.ndarray) -> tuple[list[int], dict[str, Any]]:
            kept = lowest_first(surprises)[: cfg.beams]
            return [row for row in kept for _ in range(cfg.children)], {"kept": kept}

        seeds = [cfg.base_seed + k for k in range(cfg.beams * cfg.children)]
        return chunk_search(generator, request, seeds, scorer, decide, cfg.base_seed)
