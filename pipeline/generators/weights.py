"""Sharded weight folders: the shard files an index (``*.index.json``) names, all checked present."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.generators.base import GeneratorLoadError


def indexed_shards(index: Path, what: str) -> list[Path]:
    """Shard paths named by ``index``'s weight_map (sorted, unique); ``what`` names the folder in errors."""
    try:
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise GeneratorLoadError(f"cannot read {index}: {exc}") from exc
    missing = [s for s in shards if not (index.parent / s).is_file()]
    if missing:
        raise GeneratorLoadError(f"{what} {str(index.parent)!r} is incomplete: missing shards {missing}")
    return [index.parent / s for s in shards]
