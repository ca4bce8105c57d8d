"""Config fields: their domains, which ones leave results unchanged (``operational``), and the
result-affecting view of a config that the run key hashes. Shared by every config dataclass and
kept free of pipeline imports.

A field declares its domain next to its default (``setting(4, check=at_least(1))``); ``problems``
walks a whole config and names every value outside its domain by its dotted key, so a bad value
stops the command before any work with one line instead of failing mid-chain.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import field
from typing import Any

# A domain check: None when the value is fine, else what is wrong with it ("must be >= 1").
Check = Callable[[Any], str | None]


def setting(
    default: Any = dataclasses.MISSING,
    *,
    factory: Any = dataclasses.MISSING,
    check: Check | None = None,
    run_key: bool = True,
    key_default: bool = True,
    key_view: Callable[[Any], Any] | None = None,
) -> Any:
    """A config field with an optional domain ``check`` (None values are not checked: they mean
    "unset" wherever a field is Optional). ``run_key=False``: see ``operational``.
    ``key_default=False``: the run key leaves the field out while it holds its default, so a field
    added to a schema after runs were made keeps their keys (and their caches). ``key_view``: what
    the run key sees of the value (e.g. plain dicts typed by their schemas, so that their own
    operational fields drop out)."""
    metadata = {"run_key": run_key, "check": check, "key_default": key_default, "key_view": key_view}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def operational(
    default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, check: Check | None = None
) -> Any:
    """A field that changes how work runs, never what it produces: excluded from the run key."""
    return setting(default, factory=factory, check=check, run_key=False)


def at_least(low: float) -> Check:
    return lambda v: None if _number(v) and v >= low else f"must be >= {low:g}"


def above(low: float) -> Check:
    return lambda v: None if _number(v) and v > low else f"must be > {low:g}"


def between(low: float, high: float) -> Check:
    return lambda v: None if _number(v) and low <= v <= high else f"must be between {low:g} and {high:g}"


def one_of(*choices: Any) -> Check:
    return lambda v: None if v in choices else f"is not one of {list(choices)}"


def device_name(v: Any) -> str | None:
    """auto, cpu, mps, cuda or cuda:N (what torch.device accepts and the pipeline resolves)."""
    ok = isinstance(v, str) and (v in ("auto", "cpu", "mps", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()))
    return None if ok else "must be auto, cpu, mps, cuda or cuda:N"


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def problems(obj: Any, prefix: str = "") -> list[str]:
    """``key=value what is wrong`` for every field of ``obj`` (recursively, dicts of dataclasses
    included) whose value fails its declared check."""
    out: list[str] = []
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            value, key = getattr(obj, f.name), f"{prefix}{f.name}"
            check = f.metadata.get("check")
            if check is not None and value is not None:
                why = check(value)
                if why:
                    out.append(f"{key}={value!r} {why}")
            out += problems(value, key + ".")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out += problems(v, f"{prefix}{k}.")
    return out


def result_fields(obj: Any) -> Any:
    """The result-affecting part of a config as plain data (operational fields dropped)."""
    if dataclasses.is_dataclass(obj):
        out = {
            f.name: result_fields((f.metadata.get("key_view") or _same)(getattr(obj, f.name)))
            for f in dataclasses.fields(obj)
            if f.metadata.get("run_key", True)
            and (f.metadata.get("key_default", True) or getattr(obj, f.name) != f.default)
        }
        # a schema renamed after runs were made keeps their keys by naming its old self
        out["__type__"] = getattr(type(obj), "run_key_type", type(obj).__name__)
        return out
    if isinstance(obj, (list, tuple)):
        return [result_fields(v) for v in obj]
    if isinstance(obj, dict):
        return {k: result_fields(v) for k, v in sorted(obj.items())}
    return obj


def _same(value: Any) -> Any:
    return value


def dotted(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping (a config as plain data) as ``{"section.key": value}``; the schema tags
    of ``result_fields`` (``__type__``) are left out."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if key != "__type__":
            out.update(dotted(value, f"{prefix}{key}."))
    return out
