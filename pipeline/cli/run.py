"""``python -m pipeline run +experiment=NAME key=value ...``: run the chain of stages.

Hydra composes the config (``--cfg job`` prints it, ``-m search.n=2,4`` makes one run each);
everything after composition is ours: validation before any work, the run folder, the launcher.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from pipeline import sweeps
from pipeline.cli.command import CONF_DIR, exit_status, one_line
from pipeline.config import register_configs, to_config
from pipeline.errors import Interrupted, PipelineError

register_configs()


def run(cfg: DictConfig) -> Path:
    from launchers import launcher
    from launchers.guard import exclusive_launch
    from pipeline.items import Manifest
    from pipeline.store import RunStore

    typed = to_config(cfg)
    launch = launcher(typed.cluster.name)
    manifest = Manifest.from_benchmark(typed)
    store = RunStore.for_config(typed)
    overrides, multirun = _hydra_task()
    if typed.sweep is None and multirun:
        typed.sweep = cfg.sweep = sweeps.default_name(typed.name)
    with exclusive_launch(store, typed.cluster.folder, "python -m pipeline run"):
        store.save_config(OmegaConf.to_yaml(cfg), OmegaConf.to_yaml(cfg, resolve=True))
        manifest.save(store)
        if typed.sweep is not None:
            sweeps.record_point(typed.run_root, typed.sweep, store.root, overrides)
        _log_to(store.root / "logs" / "run.log")
        outcome = launch(typed, store, manifest)
    print(outcome.report())
    if not outcome.ok:
        raise PipelineError(f"some items failed or were blocked; details in {store.root}/<stage>/items/")
    return store.root


def _hydra_task() -> tuple[list[str], bool]:
    """This point's command-line overrides and whether it is one of a multirun (none outside
    Hydra's decorator, e.g. a test composing the config itself)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return [], False
    hydra_cfg = HydraConfig.get()
    return list(hydra_cfg.overrides.task), hydra_cfg.mode == RunMode.MULTIRUN


class QuietFileHandler(logging.FileHandler):
    """The run log: a write that fails (a full disk) is dropped, not printed as a traceback; the
    stage's own write fails the same way and says so in one line."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def _log_to(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, QuietFileHandler)]:
        root.removeHandler(old)  # a multirun job must not write into the previous run's log
        old.close()
    handler = QuietFileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.setLevel(logging.INFO)
    root.addHandler(handler)


_FAILED_POINTS: list[PipelineError] = []  # known failures of this command's runs (one per multirun point)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def hydra_main(cfg: DictConfig) -> None:
    # A known failure is kept, not raised: Hydra would print its own banner, and the other
    # points of a multirun still run, unless the command was interrupted.
    if any(isinstance(exc, Interrupted) for exc in _FAILED_POINTS):
        return
    try:
        run(cfg)
    except PipelineError as exc:
        _FAILED_POINTS.append(exc)


def main(argv: list[str] | None = None) -> int:
    if argv is not None:  # Hydra's decorator reads the command line itself
        sys.argv = ["pipeline run", *argv]

    def body() -> None:
        _FAILED_POINTS.clear()
        hydra_main()
        stopped = [exc for exc in _FAILED_POINTS if isinstance(exc, Interrupted)]
        if stopped:
            raise stopped[0]
        if len(_FAILED_POINTS) == 1:
            raise _FAILED_POINTS[0]
        if _FAILED_POINTS:
            raise PipelineError(
                f"{len(_FAILED_POINTS)} runs failed: " + "; ".join(one_line(str(exc)) for exc in _FAILED_POINTS)
            )

    return exit_status(body, hydra=True)


if __name__ == "__main__":
    sys.exit(main())
