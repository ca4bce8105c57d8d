"""``python -m pipeline.run +experiment=NAME key=value ...``: run the chain of stages.

Hydra composes the config (``--cfg job`` prints it, ``-m search.n=2,4`` makes one run each);
everything after composition is ours: validation before any work, the run folder, the launcher.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from pipeline.config import register_configs, to_config
from pipeline.errors import PipelineError

register_configs()
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def run(cfg: DictConfig) -> Path:
    from launchers.local import LAUNCHERS, format_summaries
    from pipeline.items import Manifest
    from pipeline.stages.report import summary_text
    from pipeline.store import RunStore

    typed = to_config(cfg)
    manifest = Manifest.from_benchmark(typed)
    store = RunStore.for_config(typed, OmegaConf.to_yaml(cfg), OmegaConf.to_yaml(cfg, resolve=True))
    manifest.save(store)
    _log_to(store.root / "logs" / "run.log")
    outcome = LAUNCHERS[typed.cluster.name](typed, store, manifest)
    if typed.cluster.name == "slurm":  # submitted: report the jobs and return at once
        from launchers.slurm import format_submissions

        print(format_submissions(store.root, outcome))
        return store.root
    summaries = outcome
    print(format_summaries(summaries))
    text = summary_text(store) if "report" in typed.stages else None
    print(text if text is not None else f"run: {store.root}", end="" if text else "\n")
    if not all(s.ok for s in summaries):
        raise PipelineError(f"some items failed or were blocked; details in {store.root}/<stage>/items/")
    return store.root


def _log_to(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_pipeline_run_log", False)]:
        root.removeHandler(old)  # a multirun job must not write into the previous run's log
        old.close()
    handler = logging.FileHandler(path)
    handler._pipeline_run_log = True
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.setLevel(logging.INFO)
    root.addHandler(handler)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
