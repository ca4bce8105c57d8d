"""``python -m pipeline resume run=DIR [retry_failed=true] [cluster.KEY=VALUE ...]``

Resubmits only what is missing or failed in a run folder (on the cluster it was made for, or
another: ``cluster=local`` style overrides of cluster.* keys), re-chaining the stages after it.
Finished, valid items are never redone. Only fields that leave the run key unchanged (resources,
cluster, tracking) may be overridden; anything else belongs in a new run.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import MISSING

from pipeline.cli.command import compose_command, exit_status, split_overrides, wants_help
from pipeline.errors import ConfigError, PipelineError

if TYPE_CHECKING:
    from launchers import Outcome

USAGE = "python -m pipeline resume run=RUN_DIR [retry_failed=true] [cluster.KEY=VALUE ...]"


@dataclass
class ResumeCommand:
    run: str = MISSING  # the run folder
    retry_failed: bool = False  # give items that used up their attempts a fresh budget


def resume(run_dir: Path, overrides: list[str], retry_failed: bool = False) -> Outcome:
    from omegaconf import OmegaConf

    from launchers import launcher
    from launchers.guard import exclusive_launch
    from pipeline.config import load_run_config
    from pipeline.items import Manifest
    from pipeline.stages import build_stage
    from pipeline.store import RunStore, run_key

    raw, cfg = load_run_config(run_dir, overrides)
    if run_key(cfg) != run_dir.name:
        raise ConfigError(
            f"these overrides change the run key ({run_dir.name} -> {run_key(cfg)}): "
            "resume may only change resources, cluster and tracking; start a new run instead"
        )
    launch = launcher(cfg.cluster.name)
    store = RunStore(run_dir)
    store.link_stages(cfg)  # an entry pruned meanwhile is made again (empty: its work is redone)
    manifest = Manifest.load(store)
    if retry_failed:  # grant items that used up their attempts a fresh budget
        spent = [
            r.attempt
            for name in cfg.stages
            for r in store.records(name, build_stage(name, cfg, store, manifest).items()).values()
            if r is not None and r.status == "failed"
        ]
        cfg.cluster.max_attempts += max(spent, default=0)
    with exclusive_launch(store, cfg.cluster.folder, "python -m pipeline resume"):
        store.save_config(OmegaConf.to_yaml(raw), OmegaConf.to_yaml(raw, resolve=True))  # as last used
        outcome = launch(cfg, store, manifest)
    print(outcome.report())
    if not outcome.ok:
        raise PipelineError(f"some items failed or were blocked; details in {run_dir}/<stage>/items/")
    return outcome


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv, __doc__):
        return 0

    def body() -> None:
        own, run_overrides = split_overrides(argv, own_keys=("run", "retry_failed"))
        args = compose_command(ResumeCommand, own, USAGE)
        resume(Path(args.run), run_overrides, retry_failed=args.retry_failed)

    return exit_status(body)


if __name__ == "__main__":
    sys.exit(main())
