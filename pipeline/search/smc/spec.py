"""Sequential Monte Carlo (Feynman-Kac steering) at chunk boundaries: its ``search.*`` schema and
registry entry."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.fields import at_least, between, one_of, setting
from pipeline.registry import Spec

from ..base import SearchConfig


@dataclass
class SMCConfig(SearchConfig):
    name: str = "smc"
    particles: int = setting(4, check=at_least(1))
    beta: float = setting(24.0, check=at_least(0))  # weight exp(beta * potential); 0 = no steering
    ess_threshold: float = setting(0.97, check=between(0, 1))  # resample when ESS / particles falls below
    potential: str = setting("max", check=one_of("max", "diff", "sum"))  # of the rewards (-surprise) so far
    resampling: str = setting("multinomial", check=one_of("multinomial", "systematic"))
    base_seed: int = setting(0, check=at_least(0))  # particle k starts from seed base_seed + k


SPEC = Spec("smc", SMCConfig, "pipeline.search.smc.strategy:SMC")
