"""evaluate: the Physics-IQ metrics and score of the conformed submission."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.fields import at_least, operational
from pipeline.stages.base import Output, Stage

if TYPE_CHECKING:
    from pipeline.benchmarks.physicsiq.spec import PhysicsIQConfig
    from pipeline.generators.base import GeneratorConfig
    from pipeline.stages.conform import ConformConfig


@dataclass
class EvaluateConfig:
    workers: int = operational(2, check=at_least(1))  # scenario/view pairs evaluated in parallel processes
    mask_cache: str | None = operational(None)  # real-mask cache; None = inside the dataset


@dataclass(frozen=True)
class EvaluateSections:
    """The config sections evaluate reads."""

    name: str
    benchmark: PhysicsIQConfig
    generator: GeneratorConfig
    evaluate: EvaluateConfig
    conform: ConformConfig


class Evaluate(Stage[EvaluateSections]):
    name = "evaluate"
    sections = EvaluateSections
    upstream = ("conform",)
    aggregate = True

    def run(self, item_id: str) -> Output:
        from pipeline.benchmarks.physicsiq.evaluator import evaluate_folder
        from pipeline.stages.conform import submission_dir

        out_dir = self.store.outputs_dir(self.name)
        result = evaluate_folder(
            self.cfg.benchmark.root,
            submission_dir(self.store),
            out_dir,
            fps=self.cfg.generator.fps,
            descriptions=self.cfg.benchmark.descriptions,
            workers=self.cfg.evaluate.workers,
            mask_cache=self.cfg.evaluate.mask_cache,
            item_ids=self.manifest.ids(),
            model_name=self.cfg.name,
        )
        return Output(
            outputs={name: self.store.rel(path) for name, path in result.files.items()},
            data={
                "score": result.score,
                "components": dataclasses.asdict(result.components),
                "per_view_score": result.score_view,
                "per_category": result.categories.to_dict("records"),
                "per_item": result.per_item.to_dict("records"),
                # what makes scores comparable (the leaderboard asks for it): recorded next to the score
                "protocol": {
                    "fps": result.fps,
                    "mode": self.cfg.benchmark.mode,
                    "prompts": self.cfg.benchmark.prompts or "descriptions.csv",
                    "size": [self.cfg.generator.width, self.cfg.generator.height],
                    "dropped_first_frame": self.cfg.conform.drop_first_frame,
                },
            },
        )
