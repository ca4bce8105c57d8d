"""Fields every benchmark config has; each benchmark subclasses it with its own knobs."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from pipeline.fields import above, at_least, one_of, operational, setting


@dataclass
class BenchmarkConfig:
    name: str = MISSING  # the registry entry (pipeline/benchmarks/<folder>/spec.py)
    root: str = MISSING  # the dataset folder
    max_scenarios: int | None = setting(
        None, check=at_least(1)
    )  # first N scenarios, all views (smoke runs); None = all
    mode: str = setting("i2v", check=one_of("i2v", "v2v"))  # i2v: condition on an image | v2v: on a conditioning clip
    # the prompt set: a prompt-variant file (see prompts/README.md), or a set the benchmark ships
    # ("op", "bpp" for Physics-IQ); None = the dataset's own descriptions
    prompts: str | None = None
    # fps of the evaluation. `python -m pipeline evaluate-folder` reads it (None = the generations'
    # fps); in a run it must be None or equal generator.fps, so it never changes results.
    fps: float | None = operational(None, check=above(0))
