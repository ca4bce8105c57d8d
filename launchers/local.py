"""Run a chain of stages in this process.

For each stage: find the items whose record is missing, failed, stale (built from other upstream
outputs) or invalid; load the stage's models only if there is any; run them one by one, recording
failures without stopping the other items. Items whose upstream is not done are "blocked".
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError, StageError
from pipeline.stages import STAGES

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.items import Manifest
    from pipeline.stages.base import Stage
    from pipeline.store import RunStore

log = logging.getLogger("pipeline")


@dataclass
class StageSummary:
    name: str
    total: int = 0
    reused: int = 0  # already done and valid: no work
    ran: int = 0
    failed: int = 0
    blocked: int = 0  # upstream not done
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (item, first line of the error)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.blocked == 0


def pending_items(stage: "Stage") -> tuple[list[str], int, int]:
    """(items needing work, items already done, items blocked by their upstream)."""
    todo, done, blocked = [], 0, 0
    for item in stage.items():
        if stage.inputs(item) is None:
            blocked += 1
        elif stage.is_done(item):
            done += 1
        else:
            todo.append(item)
    return todo, done, blocked


def run_stage(stage: "Stage", progress: bool = True) -> StageSummary:
    from tqdm import tqdm

    started = time.time()
    todo, done, blocked = pending_items(stage)
    summary = StageSummary(stage.name, total=done + blocked + len(todo), reused=done, blocked=blocked)
    if todo:
        try:
            stage.setup()
        except PipelineError:
            raise
        except Exception as exc:
            raise StageError(f"{stage.name}: cannot start: {exc}") from exc
        try:
            for item in tqdm(todo, desc=f"{stage.name:>8}", unit="item", disable=not progress, leave=False):
                record = stage.execute(item)
                if record.done:
                    summary.ran += 1
                else:
                    summary.failed += 1
                    first = record.error.splitlines()[0] if record.error else "failed"
                    summary.errors.append((item, first))
                    log.error("%s %s failed (attempt %d): %s", stage.name, item, record.attempt, first)
        finally:
            stage.close()
    summary.seconds = time.time() - started
    return summary


def preflight(stages: list["Stage"]) -> None:
    """Cheap checks (checkpoints present, ...) for stages with work, before any stage runs."""
    for stage in stages:
        if not all(stage.is_done(i) for i in stage.items()):
            stage.preflight()


def run_chain(cfg: "Config", store: "RunStore", manifest: "Manifest") -> list[StageSummary]:
    stages = [STAGES[name](cfg, store, manifest) for name in cfg.stages]
    preflight(stages)
    summaries = []
    for stage in stages:
        summary = run_stage(stage, progress=cfg.tracking.progress)
        summaries.append(summary)
        log.info("%s: %d ran, %d reused, %d failed, %d blocked in %.1fs", summary.name, summary.ran,
                 summary.reused, summary.failed, summary.blocked, summary.seconds)
    return summaries


def format_summaries(summaries: list[StageSummary]) -> str:
    head = f"{'stage':<9}{'items':>6}{'ran':>6}{'reused':>8}{'failed':>8}{'blocked':>9}{'seconds':>9}"
    lines = [head]
    for s in summaries:
        lines.append(f"{s.name:<9}{s.total:>6}{s.ran:>6}{s.reused:>8}{s.failed:>8}{s.blocked:>9}{s.seconds:>9.1f}")
        lines += [f"    {item}: {err}" for item, err in s.errors[:5]]
        if len(s.errors) > 5:
            lines.append(f"    ... and {len(s.errors) - 5} more (see {s.name}/items/*.json)")
    return "\n".join(lines)


LAUNCHERS = {"local": run_chain}
