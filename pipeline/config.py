"""Typed configuration: dataclasses registered in Hydra's ConfigStore, selected by YAML in ``conf/``.

Structured configs are closed, so a typo in a key fails at composition time naming the key. Fields
that do not change results (devices, batch sizes, logging, the cluster) carry ``run_key=False``
metadata and are left out of the run key: changing the GPU count keeps finished work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from pipeline.benchmarks import BENCHMARKS
from pipeline.errors import ConfigError
from pipeline.fields import above, at_least, one_of, operational, problems, setting
from pipeline.generators import GENERATORS
from pipeline.registry import Registry
from pipeline.rewards import REWARDS
from pipeline.search import STRATEGIES, budget_problems
from pipeline.stages.conform import ConformConfig
from pipeline.stages.evaluate import EvaluateConfig
from pipeline.stages.prepare import PrepareConfig
from pipeline.stages.report import ReportConfig

STAGE_ORDER = ("prepare", "sample", "score", "select", "conform", "evaluate", "report")
# The sections whose schema an extension chooses: the group YAML picks ``schema_<name>``.
EXTENSIONS: dict[str, Registry] = {
    "benchmark": BENCHMARKS,
    "generator": GENERATORS,
    "reward": REWARDS,
    "search": STRATEGIES,
}


@dataclass
class StageResources:
    """What one shard job of a stage asks SLURM for. A job runs nodes × tasks_per_node ranks; every
    ``replica_size(cfg, stage)`` consecutive ranks hold one model copy (the generator's layout for
    sample, e.g. ``generator.parallel.sp=8`` for MAGI-1 24B over one node; 1 elsewhere)."""

    nodes: int = setting(1, check=at_least(1))
    tasks_per_node: int = setting(1, check=at_least(1))  # ranks per node: one per GPU on GPU stages
    gpus_per_node: int = setting(0, check=at_least(0))
    cpus_per_task: int = setting(1, check=at_least(1))
    mem_gb: float | None = setting(None, check=above(0))  # per node
    timeout_min: int = setting(60, check=at_least(1))
    max_shards: int = setting(
        1, check=at_least(1)
    )  # job-array tasks for this stage (fewer when fewer items are pending)
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    additional_parameters: dict[str, Any] = field(default_factory=dict)  # extra #SBATCH keys
    setup: list[str] = field(default_factory=list)  # shell lines run before the job starts


def _default_resources() -> dict[str, StageResources]:
    return {name: StageResources() for name in STAGE_ORDER}


@dataclass
class ClusterConfig:
    name: str = "local"  # local | slurm
    workers: int = setting(1, check=at_least(1))  # local: shards run in this many processes (1 = in this process)
    array_parallelism: int = setting(64, check=at_least(1))  # slurm: array tasks running at once
    max_attempts: int = setting(3, check=at_least(1))  # per item: after this many failures it is reported, not retried
    signal_delay_s: int = setting(
        120, check=at_least(0)
    )  # slurm: USR2 this long before the time limit (checkpoint + requeue)
    max_requeues: int = setting(5, check=at_least(0))  # slurm: time-outs / preemptions a shard may be requeued after
    folder: str = "launch"  # submitit files and logs, relative to the run folder
    resources: dict[str, StageResources] = field(default_factory=_default_resources)


@dataclass
class WandbConfig:
    mode: str = setting("offline", check=one_of("offline", "online", "disabled"))
    project: str = "physics-alignment"
    entity: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class TrackingConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)
    progress: bool = True  # tqdm bars on stderr


@dataclass
class Config:
    name: str = "default"  # experiment name: the first level of the run folder
    run_root: str = operational("runs")
    # the sweep this run is a point of (pipeline/sweeps.py); a multirun without one is named
    # <name>-<date>-<time>
    sweep: str | None = operational(None)
    stages: list[str] = operational(factory=lambda: list(STAGE_ORDER))
    # Each of these is the schema of the registry entry its group's YAML chooses (EXTENSIONS).
    benchmark: Any = MISSING
    generator: Any = MISSING
    reward: Any = MISSING
    search: Any = MISSING
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    conform: ConformConfig = field(default_factory=ConformConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    cluster: ClusterConfig = operational(factory=ClusterConfig)
    tracking: TrackingConfig = operational(factory=TrackingConfig)


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for section, registry in EXTENSIONS.items():
        for name, spec in registry.specs.items():
            cs.store(group=section, name=f"schema_{name}", node=spec.config)


def to_config(cfg: DictConfig) -> Config:
    """Validate a composed config and turn it into typed dataclasses, before any work starts:
    every value outside its domain is named, by key, in one line."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            "missing required config value(s): "
            + ", ".join(missing)
            + " (set them on the command line, e.g. "
            + f"{missing[0]}=...)"
        )
    obj = cast(Config, OmegaConf.to_object(cfg))
    for section, registry in EXTENSIONS.items():
        node = getattr(obj, section)
        name = getattr(node, registry.key, None)
        if name not in registry.specs:
            raise ConfigError(f"{section}.{registry.key}={name!r} is not one of {registry.names()}")
        if not isinstance(node, registry.spec(name).config):
            raise ConfigError(
                f"{section}: choose a {section} config from conf/{section}/ (its schema is "
                f"schema_{name}); got {type(node).__name__} with keys {sorted(cfg[section])}"
            )
    _check_choices(obj)
    if obj.benchmark.prompts == "op":  # the original descriptions: the same run as no prompt set named
        obj.benchmark.prompts = None
    bad = problems(obj) or _relation_problems(obj)
    if bad:
        raise ConfigError("; ".join(bad))
    return obj


def _relation_problems(cfg: Config) -> list[str]:
    """Values that are each in their domain but do not fit together (or the engine)."""
    from pipeline.generators import generator_class
    from pipeline.rewards import reward_problems
    from pipeline.stage_cache import check_experiment_name
    from pipeline.sweeps import name_problems

    out = check_experiment_name(cfg.name) + name_problems(cfg.sweep)
    for stage, res in cfg.cluster.resources.items():
        key = f"cluster.resources.{stage}"
        ranks = res.nodes * res.tasks_per_node
        size = replica_size(cfg, stage)
        if cfg.cluster.name == "slurm" and stage in cfg.stages and ranks % size:
            out.append(
                f"{key}.tasks_per_node={res.tasks_per_node}: the job's {ranks} rank(s) (nodes={res.nodes} x "
                f"tasks_per_node) do not divide into model copies of {size} ranks ({describe_layout(cfg)})"
            )
        if res.gpus_per_node and res.gpus_per_node != res.tasks_per_node:
            out.append(
                f"{key}.tasks_per_node={res.tasks_per_node}: one rank per GPU, so it must equal "
                f"gpus_per_node={res.gpus_per_node}"
            )
        if cfg.cluster.name == "slurm" and stage in cfg.stages and cfg.cluster.signal_delay_s >= res.timeout_min * 60:
            out.append(
                f"cluster.signal_delay_s={cfg.cluster.signal_delay_s}: not shorter than the time limit of "
                f"the job ({key}.timeout_min={res.timeout_min}), so its checkpoint signal would come first"
            )
    engine = generator_class(cfg.generator.kind)
    out += engine.settings_problems(cfg.generator)
    if "sample" in cfg.stages:
        out += engine.layout_problems(cfg.generator)
    frames = None if out else engine.planned_frames(cfg.generator, cfg.benchmark.mode)
    out += reward_problems(cfg.reward, frames if "score" in cfg.stages else None)
    if "sample" in cfg.stages:
        out += STRATEGIES.of(cfg.search).problems(cfg.search, engine, cfg.reward, cfg.generator)
        if not out:
            out += budget_problems(cfg.search, engine.planned_nfe(cfg.generator, cfg.benchmark.mode))
    return out


def replica_dims(cfg: Config, stage: str) -> dict[str, int]:
    """The parallel dimensions of one model copy in a shard job of ``stage``, outermost first: the
    generator's ``replica_dims`` for sample (the stage that loads a generator), none elsewhere."""
    if stage != "sample":
        return {}
    from pipeline.generators import generator_class

    return generator_class(cfg.generator.kind).replica_dims(cfg.generator)


def replica_size(cfg: Config, stage: str) -> int:
    """Ranks holding one model copy in a shard job of ``stage``."""
    return math.prod(replica_dims(cfg, stage).values())


def describe_layout(cfg: Config) -> str:
    dims = replica_dims(cfg, "sample")
    return "generator.parallel " + (" x ".join(f"{d}={n}" for d, n in dims.items()) or "1")


def _check_choices(cfg: Config) -> None:
    choices = {
        "stages": (cfg.stages, STAGE_ORDER),
        "cluster.resources": (list(cfg.cluster.resources), STAGE_ORDER),
    }
    for key, (values, allowed) in choices.items():
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise ConfigError(f"{key}={unknown!r} is not one of {list(allowed)}")


def load_run_config(run_dir, overrides: Sequence[str] = ()) -> tuple[DictConfig, Config]:
    """The config a run folder was made with (its config.yaml), with dotlist ``overrides`` applied
    and validated like a fresh composition: unknown keys and bad values fail naming the key."""
    from pathlib import Path

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"run={run_dir}: not a run folder ({path} is missing)")
    saved = OmegaConf.load(path)
    if not isinstance(saved, DictConfig):
        raise ConfigError(f"{path}: not a run config (a mapping of sections)")
    schema = OmegaConf.structured(Config)
    for section, registry in EXTENSIONS.items():
        name = saved.get(section, {}).get(registry.key)
        if name not in registry.specs:
            raise ConfigError(f"{path}: unknown {section}.{registry.key} {name!r}")
        schema[section] = OmegaConf.structured(registry.spec(name).config)
    try:
        merged = cast(DictConfig, OmegaConf.merge(schema, saved, OmegaConf.from_dotlist(list(overrides))))
    except Exception as exc:  # omegaconf's errors name the key; keep their message, drop the trace
        raise ConfigError(str(exc).splitlines()[0] + f" ({', '.join(overrides) or path})") from None
    return merged, to_config(merged)
