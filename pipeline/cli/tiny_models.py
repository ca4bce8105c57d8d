"""``python -m pipeline tiny-models [out=checkpoints/tiny]``: the randomly initialised tiny models
the demo and the tests run, written in the same formats (official and Hugging Face / diffusers
folders) as the real checkpoints so the same loading code is exercised. Idempotent.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from pipeline.cli.command import compose_command, exit_status, wants_help


@dataclass
class TinyModelsCommand:
    out: str = "checkpoints/tiny"


def main(argv: list[str] | None = None) -> int:
    from pipeline.tiny_models import make_tiny_models

    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv, __doc__):
        return 0

    def body() -> None:
        args = compose_command(TinyModelsCommand, argv, "python -m pipeline tiny-models [out=DIR]")
        for name, path in make_tiny_models(args.out).items():
            print(f"{name}: {path}")

    return exit_status(body)


if __name__ == "__main__":
    sys.exit(main())
