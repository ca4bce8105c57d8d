"""How every command reads its arguments and how it ends.

Arguments: ``key=value`` overrides in Hydra's grammar, composed by Hydra into the command's own
structured config (a dataclass registered beside the ones in ``conf/``), so a typo in a key and a
value of the wrong type fail the same way in every command, naming the key. ``run`` composes
through ``@hydra.main`` instead, for what only the decorator gives: multirun sweeps (``-m``) and
``--cfg``.

Ending: a known failure (bad input, a missing file, a refused submission: any ``PipelineError``,
and Hydra's own composition errors) prints one line ``error: ...`` and exits with 2; a bug keeps
its traceback and exits with 1; an interrupted command exits with 128 + the signal number. Each
command's ``main`` returns ``exit_status(its body)``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import DISK_ERRNOS, ConfigError, Interrupted, PipelineError

KNOWN_FAILURE = 2
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def wants_help(argv: Sequence[str], doc: str | None) -> bool:
    """``-h``/``--help``: print the command's docstring (its usage) and stop."""
    if any(a in ("-h", "--help") for a in argv):
        print(doc or "")
        return True
    return False


def split_overrides(argv: Sequence[str], own_keys: Sequence[str]) -> tuple[list[str], list[str]]:
    """The overrides of the command's own keys, and the others (meant for another config, e.g. a
    saved run's); all checked against Hydra's override grammar here, so a malformed argument fails
    before any work."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(argv))
    own: list[str] = []
    other: list[str] = []
    for arg, override in zip(argv, parsed):
        (own if override.key_or_group in own_keys else other).append(arg)
    return own, other


def compose_command(schema: type, overrides: Sequence[str], usage: str) -> Any:
    """The command's typed config: ``schema`` (a dataclass; its ``defaults`` may pick groups of
    ``conf/``) composed with ``overrides``; missing or out-of-domain values fail naming the key."""
    from hydra import compose, initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from pipeline.config import register_configs
    from pipeline.fields import problems

    register_configs()
    name = f"command_{schema.__name__}"
    ConfigStore.instance().store(name=name, node=schema)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name=name, overrides=list(overrides))
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"missing required value(s): {', '.join(missing)}; usage: {usage}")
    typed = OmegaConf.to_object(cfg)
    bad = problems(typed)
    if bad:
        raise ConfigError("; ".join(bad))
    return typed


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
