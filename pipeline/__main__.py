"""``python -m pipeline COMMAND ...``: see ``pipeline/cli/``."""

from __future__ import annotations

import importlib
import sys

from pipeline.cli import COMMANDS, usage


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, args = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"pipeline.cli.{COMMANDS[name][0]}")
    return module.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
