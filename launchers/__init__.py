"""Where a chain of stages runs: one registry entry per launcher, found by ``cluster.name``.

A launcher takes the typed config, the run folder and the manifest, and returns an outcome that
prints itself (``report``) and says whether every item it was asked for is done (``ok``); the
commands never branch on which launcher ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.items import Manifest
    from pipeline.store import RunStore


class Outcome(Protocol):
    @property
    def ok(self) -> bool: ...

    def report(self) -> str: ...


Launcher = Callable[["Config", "RunStore", "Manifest"], Outcome]


def launcher(name: str) -> Launcher:
    """The launcher registered as ``name`` (``cluster.name``); ConfigError naming the choices."""
    from launchers.local import run_chain
    from launchers.slurm import submit_to_slurm

    registry: dict[str, Launcher] = {"local": run_chain, "slurm": submit_to_slurm}
    if name not in registry:
        raise ConfigError(f"cluster.name={name!r} is not one of {sorted(registry)}")
    return registry[name]
