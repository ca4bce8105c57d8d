"""What a run folder must look like after any crash and rerun, checked from the outside (shared by
tests/faults and bench/faults.py).

- lost: an item of a stage that is not done after the final rerun;
- duplicated: work started on an item after it had been completed once (a finished item redone);
- corrupt: an item counted done whose outputs do not hash to its record's digest, or fail the
  stage's own validation (a video that does not decode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Audit:
    done: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    starts: int = 0  # attempts started, all launches together (work redone after a kill included)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.corrupt)


def audit(run_dir: Path, stages: list[str] | None = None, require_done: bool = True) -> Audit:
    from pipeline.config import load_run_config
    from pipeline.items import Manifest
    from pipeline.runner import is_done
    from pipeline.stages import build_stage
    from pipeline.store import RunStore

    _, cfg = load_run_config(run_dir)
    store = RunStore(run_dir)
    manifest = Manifest.load(store)
    out = Audit()
    for name in stages or cfg.stages:
        stage = build_stage(name, cfg, store, manifest)
        for item in stage.items():
            key = f"{name}/{item}"
            events = sorted(store.attempts(name, item), key=lambda e: e["time"])
            out.starts += sum(e["event"] == "start" for e in events)
            rec = store.read(name, item)
            finished = [e["time"] for e in events if e["event"] == "done"]
            if rec is not None and rec.done:  # killed between the record and its log line
                finished.append(rec.started + rec.seconds)
            if finished and any(e["event"] == "start" and e["time"] > min(finished) for e in events):
                out.duplicated.append(key)
            if not is_done(stage, item):
                if require_done:
                    out.lost.append(key)
                continue
            out.done += 1
            try:
                stage.validate(rec)
                intact = store.content_digest(rec) == rec.digest
            except Exception:  # noqa: BLE001 - any failure to validate is corruption here
                intact = False
            if not intact:
                out.corrupt.append(key)
    return out
