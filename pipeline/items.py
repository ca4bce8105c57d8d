"""Items: the units of work every per-item stage iterates over, with ids stable across runs.

The manifest is built once per run from the benchmark (validating the dataset before any work
starts) and saved in the run folder, so every stage, and every shard of a stage, sees the same
item list.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.errors import StageError
from pipeline.files import atomic_write_bytes
from pipeline.store import RunStore

if TYPE_CHECKING:
    from pipeline.config import Config


@dataclass(frozen=True)
class Item:
    item_id: str  # the benchmark id, e.g. "0001"
    prompt: str
    category: str
    scenario: str
    view: str
    submission_name: str  # the file name the benchmark contract expects
    condition_source: str  # absolute path of the conditioning image or clip


class Manifest:
    FILE = "manifest.parquet"

    def __init__(self, items: list[Item]):
        self.items = list(items)
        self._by_id = {it.item_id: it for it in self.items}

    def ids(self) -> list[str]:
        return [it.item_id for it in self.items]

    def get(self, item_id: str) -> Item:
        try:
            return self._by_id[item_id]
        except KeyError:
            raise StageError(f"item {item_id!r} is not in the run manifest") from None

    @classmethod
    def from_benchmark(cls, cfg: Config) -> Manifest:
        from pipeline.benchmarks import load_benchmark

        return cls(load_benchmark(cfg).items())

    def save(self, store: RunStore) -> Path:
        buf = io.BytesIO()
        pd.DataFrame([asdict(it) for it in self.items]).to_parquet(buf, index=False)
        path = store.root / self.FILE
        atomic_write_bytes(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, store: RunStore) -> Manifest:
        path = store.root / cls.FILE
        if not path.exists():
            raise StageError(f"{path} is missing: run the chain from the start (python -m pipeline run)")
        df = pd.read_parquet(path)
        return cls([Item(**row) for row in df.to_dict("records")])
