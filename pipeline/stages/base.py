"""What every stage declares: its items, its upstream stages, how to run one item, what an item
costs, and how to tell a finished output is still valid. Records, reuse, attempts and states are
the runner's (``pipeline.runner``); where and when items run is the launchers'.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pipeline.fields import result_fields
from pipeline.store import Record, RunStore

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.items import Manifest

ALL = "all"  # the single item of an aggregating stage


@dataclass
class Output:
    """What ``run`` returns: files written (name -> path relative to the run folder) and results."""

    outputs: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


S = TypeVar("S")  # a stage's sections: a frozen dataclass of the root config's sections it reads


class Stage(ABC, Generic[S]):
    """A stage sees only its own sections of the config (``sections``, e.g. score: ``reward``),
    never the root: what it reads is declared, and nothing else can change what it makes."""

    name: ClassVar[str]
    upstream: ClassVar[tuple[str, ...]] = ()
    aggregate: ClassVar[bool] = False  # one unit of work over all items
    sections: ClassVar[type]

    def __init__(self, cfg: S, store: RunStore, manifest: Manifest):
        self.cfg = cfg
        self.store = store
        self.manifest = manifest
        # the DeviceMesh of this rank's replica when it spans several ranks (set by the launcher
        # before setup; dims "replica", "tp"): a stage whose model splits uses it, others ignore it
        self.mesh: Any = None

    @classmethod
    def sections_of(cls, root: Config) -> S:
        return cls.sections(**{f.name: getattr(root, f.name) for f in dataclasses.fields(cls.sections)})

    @classmethod
    def key_fields(cls, sections: S) -> Any:
        """What the stage's work depends on in its sections, for its cache key
        (``pipeline.stage_cache``): every result-affecting field unless a stage knows better."""
        return result_fields(sections)

    # ---- what to do -------------------------------------------------------------------------
    def items(self) -> list[str]:
        return [ALL] if self.aggregate else self.manifest.ids()

    # ---- stage-specific ---------------------------------------------------------------------
    def preflight(self) -> None:
        """Cheap checks that must pass before any stage of the chain starts (checkpoints exist)."""

    def setup(self) -> None:
        """Load models or other expensive state; called only when some item needs work."""

    @abstractmethod
    def run(self, item_id: str) -> Output: ...

    def validate(self, record: Record) -> None:
        """Raise if the outputs of a finished record can no longer be trusted, beyond their
        content digest (which the store checks): e.g. a video that must decode."""

    def cost(self, item_id: str) -> float:
        """Relative work of an item, for balancing shards (sample overrides it)."""
        return 1.0

    def follow(self, item_id: str) -> None:
        """On a non-leader rank of a multi-rank replica: the leader's work on ``item_id`` again,
        step for step, so the model's collectives meet, writing nothing. Only stages whose model
        splits across ranks (sample, MAGI-1) run multi-rank replicas."""

    def close(self) -> None:
        """Release what ``setup`` loaded."""
