"""Sequential Monte Carlo at chunk boundaries (Feynman-Kac steering, Singhal et al. 2025; the
WMReward history's ``smc_sample`` for the potential and ESS rule): ``particles`` rows; at every
boundary but the last the reward of each video so far, r = -surprise, gives a potential phi
(``max``: the running max of r; ``sum``: the running sum; ``diff``: r minus the previous r, which
telescopes to exp(beta r_final)); log weights grow by beta * phi; when the effective sample size
ESS = 1 / sum(w^2) falls below ``ess_threshold`` x particles the particles are resampled
(multinomial or systematic, from a generator seeded by ``base_seed``), weights reset, and a particle
drawn more than once continues with fresh noise where no step has been. The final particles go to
score and select (the lowest final surprise wins)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base import Found, Strategy
from ..chunk_search import chunk_search, needs_chunk_sessions, needs_whole_windows
from .spec import SMCConfig


def normalized(log_weights: np.ndarray) -> np.ndarray:
    """Weights summing to 1; all -inf (no finite reward at all) gives uniform weights."""
    if not np.isfinite(log_weights).any():
        return np.full(len(log_weights), 1.0 / len(log_weights))
    w = np.exp(log_weights - log_weights[np.isfinite(log_weights)].max())
    return w / w.sum()


def resample(weights: np.ndarray, method: str, rng: np.random.Generator) -> list[int]:
    n = len(weights)
    if method == "systematic":
        positions = (rng.random() + np.arange(n)) / n
    else:
        positions = np.sort(rng.random(n))
    cumulative = np.cumsum(weights)
    cumulative[-1] = 1.0  # rounding must not push a position past the last particle
    return [int(i) for i in np.searchsorted(cumulative, positions, side="right")]


class SMC(Strategy):
    in_loop = True

    @staticmethod
    def num_candidates(cfg: SMCConfig) -> int:
        return cfg.particles

    @staticmethod
    def problems(cfg: SMCConfig, generator_class: type, reward_cfg: Any, generator_cfg: Any = None) -> list[str]:
        return needs_chunk_sessions("smc", generator_class) + needs_whole_windows("smc", reward_cfg)

    @staticmethod
    def run(cfg: SMCConfig, generator, request, scorer) -> Found:
        n = cfg.particles
        rng = np.random.default_rng(cfg.base_seed)
        state = {"log_w": np.zeros(n), "best": np.full(n, -np.inf), "total": np.zeros(n), "prev": np.zeros(n)}

        def decide(boundary: int, surprises: np.ndarray) -> tuple[list[int], dict[str, Any]]:
            reward = np.where(np.isfinite(surprises), -surprises, -np.inf)
            if cfg.potential == "max":
                state["best"] = np.maximum(state["best"], reward)
                phi = state["best"]
            elif cfg.potential == "sum":
                state["total"] = state["total"] + reward
                phi = state["total"]
            else:  # a particle whose last reward was not finite starts its differences again
                phi = reward - np.where(np.isfinite(state["prev"]), state["prev"], 0.0)
            state["prev"] = reward
            with np.errstate(invalid="ignore"):  # beta 0 x -inf: a particle with no reward keeps weight
                step = np.where(np.isfinite(phi) | (cfg.beta > 0), cfg.beta * phi, 0.0)
            state["log_w"] = state["log_w"] + step
            weights = normalized(state["log_w"])
            ess = float(1.0 / np.sum(weights**2))
            rows = list(range(n))
            resampled = ess / n < cfg.ess_threshold
            if resampled:
                rows = resample(weights, cfg.resampling, rng)
                state["log_w"] = np.zeros(n)
                for key in ("best", "total", "prev"):
                    state[key] = state[key][rows]
            return rows, {"weights": [float(w) for w in weights], "ess": ess, "resampled": resampled}

        seeds = [cfg.base_seed + k for k in range(n)]
        return chunk_search(generator, request, seeds, scorer, decide, cfg.base_seed)
