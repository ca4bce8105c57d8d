"""Models kept loaded for the life of a process: the one cache every engine and reward uses.

Keys name what was loaded (kind, resolved path, device, dtype, ...) so two stages or two
generators that ask for the same weights share one copy; ``clear`` drops every model (tests,
or freeing a GPU between stages of one process).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_MODELS: dict[tuple, Any] = {}
_LOCK = threading.RLock()  # a build may load another cached model


def resident(key: tuple, build: Callable[[], T]) -> T:
    """The model stored under ``key``, built by ``build()`` the first time (once per process)."""
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = build()
        return _MODELS[key]


def clear() -> None:
    with _LOCK:
        _MODELS.clear()
