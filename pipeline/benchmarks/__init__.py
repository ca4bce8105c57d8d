"""Benchmarks the pipeline can run: each turns its dataset into run items and knows its contract."""
from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.errors import PipelineError

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.items import Item


class PhysicsIQBenchmark:
    """Physics-IQ i2v: one item per take-1 (scenario, view), conditioned on its switch frame."""

    def __init__(self, cfg: "Config"):
        from pipeline.benchmarks.physicsiq.layout import DatasetError, PhysicsIQDataset

        try:
            self.dataset = PhysicsIQDataset(cfg.benchmark.root, cfg.benchmark.descriptions)
            self.dataset.validate(cfg.generator.fps)
        except DatasetError as exc:
            raise PipelineError(f"benchmark.root: {exc}") from None
        self.max_scenarios = cfg.benchmark.max_scenarios

    def items(self) -> list["Item"]:
        from pipeline.items import Item

        chosen = self.dataset.items
        if self.max_scenarios is not None:
            keep = set(self.dataset.scenarios[: self.max_scenarios])
            chosen = [it for it in chosen if it.scenario in keep]
        return [
            Item(item_id=it.item_id, prompt=it.description, category=it.category,
                 scenario=it.scenario, view=it.view, submission_name=it.generated_video_name,
                 condition_source=str(self.dataset.switch_frame(it).resolve()))
            for it in chosen
        ]


BENCHMARKS = {"physicsiq": PhysicsIQBenchmark}


def load_benchmark(cfg: "Config") -> PhysicsIQBenchmark:
    return BENCHMARKS[cfg.benchmark.name](cfg)
