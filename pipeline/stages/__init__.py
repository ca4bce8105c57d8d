"""The chain's stages in order; each reads only its predecessors' outputs in the run folder and
its own sections of the config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.stages.conform import Conform
from pipeline.stages.evaluate import Evaluate
from pipeline.stages.prepare import Prepare
from pipeline.stages.report import Report
from pipeline.stages.sample import Sample
from pipeline.stages.score import Score
from pipeline.stages.select import Select

STAGES = {cls.name: cls for cls in (Prepare, Sample, Score, Select, Conform, Evaluate, Report)}


if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.items import Manifest
    from pipeline.stages.base import Stage
    from pipeline.store import RunStore


def build_stage(name: str, cfg: Config, store: RunStore, manifest: Manifest) -> Stage:
    """Stage ``name`` of a run, given its own sections of ``cfg``."""
    cls: type[Stage[Any]] = STAGES[name]
    return cls(cls.sections_of(cfg), store, manifest)
