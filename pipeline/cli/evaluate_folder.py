"""``python -m pipeline evaluate-folder benchmark.root=DATASET generated=DIR output=DIR``: score one folder.

Scores a folder of generations (one mp4 per benchmark item, matched by its ``NNNN_`` prefix,
whatever follows) against a Physics-IQ dataset in the official layout, exactly as the official
evaluator does, and prints ``Physics-IQ score: X``. It writes into ``output``: ``<model>.csv``
(the official 37 columns), ``<model>_metrics.json`` (score, components, per-view score, categories),
``<model>_categories.csv`` and ``<model>_categories.png``. The generated folder is only read.

Keys (composed by Hydra from conf/ and the typed schemas, so typos fail naming the key):

  benchmark.root=DIR           dataset folder (required)
  benchmark.descriptions=CSV   default: descriptions.csv inside or beside the dataset root
  benchmark.fps=F              default: the generations' fps (they must all have one fps);
                               when set, generations at another fps are an error
  benchmark.max_scenarios=N    score the first N scenarios only (all views)
  benchmark.mode, benchmark.prompts
                               recorded in the JSON (how the generations were made)
  generated=DIR                the model folder (required)
  output=DIR                   where results go (required)
  model=NAME                   file stem of the results; default: the generated folder's name
  evaluate.workers=N           parallel processes (default 2); evaluate.mask_cache=DIR for
                               the mask cache (default: <dataset root>/.cache/masks)
  benchmark=physicsiq_synthetic  any config of conf/benchmark/ (default: physicsiq)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from pipeline.cli.command import compose_command, exit_status, wants_help
from pipeline.errors import ConfigError
from pipeline.stages.evaluate import EvaluateConfig

USAGE = "python -m pipeline evaluate-folder benchmark.root=DATASET generated=DIR output=DIR [model=NAME]"


@dataclass
class EvaluateFolderCommand:
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"benchmark": "physicsiq"}])
    benchmark: Any = MISSING  # a benchmark schema, chosen by the benchmark group
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    generated: str = MISSING  # folder of generations (CLI only)
    output: str = MISSING  # results folder (CLI only)
    model: str | None = None  # results file stem; None = the generated folder's name


def evaluate(cfg: EvaluateFolderCommand):
    from pipeline.benchmarks.physicsiq.evaluator import evaluate_folder

    b = cfg.benchmark
    if b.name != "physicsiq":
        raise ConfigError(f"benchmark.name={b.name!r}: only physicsiq can be evaluated")
    item_ids = None
    if b.max_scenarios is not None:
        from pipeline.benchmarks.physicsiq.layout import PhysicsIQDataset

        ds = PhysicsIQDataset(b.root, b.descriptions)
        keep = set(ds.scenarios[: b.max_scenarios])
        item_ids = [it.item_id for it in ds.items if it.scenario in keep]
    return evaluate_folder(
        b.root,
        cfg.generated,
        cfg.output,
        fps=b.fps,
        descriptions=b.descriptions,
        workers=cfg.evaluate.workers,
        mask_cache=cfg.evaluate.mask_cache,
        model_name=cfg.model,
        item_ids=item_ids,
        extra={"mode": b.mode, "prompts": b.prompts or "descriptions.csv"},
    )


def format_result(result) -> str:
    c = result.components
    lines = [
        f"Physics-IQ score: {result.score:.2f}",
        f"  fps {result.fps:g}, {c.n_scenarios} scenarios; Physics-IQ score, Verified formula {result.score_view:.2f}",
        f"  {'metric':<28}{'model':>10}{'physical variance':>20}",
        f"  {'Spatiotemporal IoU':<28}{c.spatiotemporal_iou:>10.4f}{c.var_spatiotemporal_iou:>20.4f}",
        f"  {'Spatial IoU':<28}{c.spatial_iou:>10.4f}{c.var_spatial_iou:>20.5f}",
        f"  {'Weighted spatial IoU':<28}{c.weighted_spatial_iou:>10.4f}{c.var_weighted_spatial_iou:>20.4f}",
        f"  {'MSE':<28}{c.mse:>10.5f}{c.var_mse:>20.4f}",
        f"  {'category':<28}{'n':>4}{'score':>8}{'per-view':>10}",
    ]
    for row in result.categories.to_dict("records"):
        lines.append(f"  {row['category']:<28}{row['n_scenarios']:>4}{row['score']:>8.2f}{row['score_view']:>10.2f}")
    lines += [f"  {name}: {path}" for name, path in result.files.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv, __doc__):
        return 0
    return exit_status(lambda: print(format_result(evaluate(compose_command(EvaluateFolderCommand, argv, USAGE)))))


if __name__ == "__main__":
    sys.exit(main())
