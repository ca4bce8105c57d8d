"""One registry per extension point: generators, rewards, benchmarks and search strategies.

Every implementation lives in its own folder of its extension point's package and declares itself
in that folder's ``spec.py``: ``SPEC = Spec(name, ConfigClass, "module:Implementation")``. The
registry is the set of those files, so adding one touches its own folder and one YAML in
``conf/<section>/`` (whose ``defaults`` pick ``schema_<name>``). Specs import no torch; the
implementation is imported only when it is used.

The launcher registry is ``launchers.launcher``: launchers are code paths, not configured models.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class Spec:
    """One registry entry: the name the section's ``key`` field selects, the section's config
    schema, and the implementation (``"module:attribute"``)."""

    name: str
    config: type
    implementation: str


class Registry:
    """The specs of ``package``'s folders, for the config section ``section`` whose field ``key``
    names the entry (``generator.kind``, ``reward.name``, ...)."""

    def __init__(self, package: str, section: str, key: str = "name"):
        self.package, self.section, self.key = package, section, key

    @cached_property
    def specs(self) -> dict[str, Spec]:
        found: dict[str, Spec] = {}
        root = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(root.__path__):
            if not module.ispkg:
                continue
            name = f"{self.package}.{module.name}.spec"
            try:
                spec = importlib.import_module(name).SPEC
            except ModuleNotFoundError as exc:
                if exc.name == name:  # a folder that is not an entry (shared code)
                    continue
                raise
            if spec.name in found:
                raise ValueError(f"{self.section}.{self.key}={spec.name!r} is declared twice")
            found[spec.name] = spec
        return found

    def names(self) -> list[str]:
        return sorted(self.specs)

    def spec(self, name: str) -> Spec:
        try:
            return self.specs[name]
        except KeyError:
            raise ConfigError(f"{self.section}.{self.key}={name!r} is not one of {self.names()}") from None

    def implementation(self, name: str) -> Any:
        """The class or function registered as ``name`` (imported on first use; nothing built)."""
        module, _, attr = self.spec(name).implementation.partition(":")
        return getattr(importlib.import_module(module), attr)

    def of(self, section_config: Any) -> Any:
        """The implementation a config section selects."""
        return self.implementation(getattr(section_config, self.key))
