"""Field helpers shared by every config dataclass (kept free of pipeline imports to avoid cycles)."""
from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any


def operational(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING) -> Any:
    """A field that changes how work runs, never what it produces: excluded from the run key."""
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"run_key": False})
    return field(default=default, metadata={"run_key": False})


def result_fields(obj: Any) -> Any:
    """The result-affecting part of a config as plain data (operational fields dropped)."""
    if dataclasses.is_dataclass(obj):
        out = {f.name: result_fields(getattr(obj, f.name))
               for f in dataclasses.fields(obj) if f.metadata.get("run_key", True)}
        out["__type__"] = type(obj).__name__
        return out
    if isinstance(obj, (list, tuple)):
        return [result_fields(v) for v in obj]
    if isinstance(obj, dict):
        return {k: result_fields(v) for k, v in sorted(obj.items())}
    return obj
