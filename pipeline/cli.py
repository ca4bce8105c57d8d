"""How every command ends. A known failure (bad input, a missing file, a refused submission: any
``PipelineError``, and Hydra's own composition errors) prints one line ``error: ...`` and exits
with 2; a bug keeps its traceback and exits with 1; an interrupted command exits with 128 + the
signal number. Each command's ``main`` returns ``exit_status(its body)`` and its ``__main__`` exits
with it: ``run``, ``resume``, ``status``, ``score`` and ``evaluate``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from pipeline.errors import DISK_ERRNOS, Interrupted, PipelineError

KNOWN_FAILURE = 2


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def hydra_message(exc: BaseException) -> str:
    """Hydra's message and the omegaconf cause it wraps, e.g. ``Error merging override
    search.nn=4: Key 'nn' not in 'SearchConfig'`` (without omegaconf's full_key lines)."""
    parts = [str(exc).splitlines()[0] if str(exc) else type(exc).__name__]
    cause = exc.__cause__
    if cause is not None and str(cause):
        parts.append(str(cause).splitlines()[0])
    return ": ".join(parts)


def exit_status(body: Callable[[], int | None], *, hydra: bool = False) -> int:
    """The body's status (None = 0), or, for a known failure, its one line on stderr and 2 (or
    128 + signal when interrupted). A bug propagates with its traceback. ``hydra=True`` makes
    Hydra's decorated entry point raise its errors here instead of printing a traceback hint."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if hydra:
        os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises; we print what a user needs
    try:
        return body() or 0
    except Interrupted as exc:
        print(f"interrupted: {one_line(str(exc))}", file=sys.stderr)
        return 128 + exc.signum
    except PipelineError as exc:
        message = one_line(str(exc))
    except (HydraException, OmegaConfBaseException) as exc:
        message = one_line(hydra_message(exc))
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        message = (
            f"{exc.strerror}: {exc.filename or 'the run folder'}; free space and run the same "
            "command again: finished items are kept"
        )
    print(f"error: {message}", file=sys.stderr)
    return KNOWN_FAILURE
