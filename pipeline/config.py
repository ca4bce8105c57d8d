"""Typed configuration: dataclasses registered in Hydra's ConfigStore, selected by YAML in ``conf/``.

Structured configs are closed, so a typo in a key fails at composition time naming the key. Fields
that do not change results (devices, batch sizes, logging, the cluster) carry ``run_key=False``
metadata and are left out of the run key: changing the GPU count keeps finished work.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from pipeline.errors import ConfigError
from pipeline.schema import operational
from pipeline.stages.conform import ConformConfig
from pipeline.stages.evaluate import EvaluateConfig
from pipeline.stages.prepare import PrepareConfig
from pipeline.stages.report import ReportConfig

STAGE_ORDER = ("prepare", "sample", "score", "select", "conform", "evaluate", "report")


@dataclass
class BenchmarkConfig:
    name: str = "physicsiq"
    root: str = MISSING  # dataset folder in the official Physics-IQ layout
    descriptions: Optional[str] = None  # descriptions.csv; default: inside or beside the root
    max_scenarios: Optional[int] = None  # first N scenarios, all views (smoke runs); None = all


@dataclass
class GeneratorConfig:
    """Fields every generator has; engines subclass it with their own knobs."""

    kind: str = MISSING
    checkpoint: str = MISSING
    width: int = MISSING
    height: int = MISSING
    num_frames: int = MISSING
    fps: float = MISSING
    dtype: str = "float32"
    device: str = operational("auto")
    batch_size: int = operational(1)  # candidates of one prompt per forward


@dataclass
class WanI2VConfig(GeneratorConfig):
    kind: str = "wan_i2v"
    steps: int = 40
    guidance_scale: float = 5.0
    negative_prompt: str = ""


@dataclass
class RewardConfig:
    name: str = "vjepa2_surprise"
    checkpoint: str = MISSING  # Hugging Face format folder (config.json + safetensors)
    window_size: int = 16
    context_frames: int = 8
    stride: int = 2
    aggregate: str = "mean"  # mean | max over windows
    max_frames: Optional[int] = None  # None = all frames; 49 = the reference CLI's uniform subsample
    dtype: str = "float32"
    device: str = operational("auto")
    batch_windows: int = operational(8)


@dataclass
class SearchConfig:
    name: str = "best_of_n"
    n: int = 4  # candidates per item
    base_seed: int = 0  # candidate k uses seed base_seed + k


@dataclass
class ClusterConfig:
    name: str = "local"


@dataclass
class WandbConfig:
    mode: str = "offline"  # offline | online | disabled
    project: str = "physics-alignment"
    entity: Optional[str] = None
    tags: list[str] = field(default_factory=list)


@dataclass
class TrackingConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)
    progress: bool = True  # tqdm bars on stderr


@dataclass
class Config:
    name: str = "default"  # experiment name: the first level of the run folder
    run_root: str = operational("runs")
    stages: list[str] = operational(factory=lambda: list(STAGE_ORDER))
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    generator: Any = MISSING  # a GeneratorConfig subclass chosen by the generator group
    reward: RewardConfig = field(default_factory=RewardConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    conform: ConformConfig = field(default_factory=ConformConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    cluster: ClusterConfig = operational(factory=ClusterConfig)
    tracking: TrackingConfig = operational(factory=TrackingConfig)


GENERATOR_SCHEMAS = {"wan_i2v": WanI2VConfig}


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for kind, schema in GENERATOR_SCHEMAS.items():
        cs.store(group="generator", name=f"schema_{kind}", node=schema)


def to_config(cfg: DictConfig) -> Config:
    """Validate a composed config and turn it into typed dataclasses, before any work starts."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError("missing required config value(s): " + ", ".join(missing)
                          + " (set them on the command line, e.g. " + f"{missing[0]}=...)")
    obj = OmegaConf.to_object(cfg)
    if not isinstance(obj.generator, GeneratorConfig):
        raise ConfigError("generator: choose a generator config (e.g. generator=wan_tiny); "
                          f"got an untyped node with keys {sorted(cfg.generator)}")
    unknown = [s for s in obj.stages if s not in STAGE_ORDER]
    if unknown:
        raise ConfigError(f"stages: unknown stage(s) {unknown}; known: {list(STAGE_ORDER)}")
    _check_choices(obj)
    return obj


def _check_choices(cfg: Config) -> None:
    from launchers.local import LAUNCHERS
    from pipeline.benchmarks import BENCHMARKS
    from pipeline.search import STRATEGIES
    from pipeline.stages.score import SCORERS

    choices = {
        "reward.aggregate": (cfg.reward.aggregate, ("mean", "max")),
        "prepare.resize": (cfg.prepare.resize, ("crop", "stretch")),
        "tracking.wandb.mode": (cfg.tracking.wandb.mode, ("offline", "online", "disabled")),
        "search.name": (cfg.search.name, tuple(STRATEGIES)),
        "benchmark.name": (cfg.benchmark.name, tuple(BENCHMARKS)),
        "cluster.name": (cfg.cluster.name, tuple(LAUNCHERS)),
        "reward.name": (cfg.reward.name, tuple(SCORERS)),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{key}={value!r} is not one of {list(allowed)}")
