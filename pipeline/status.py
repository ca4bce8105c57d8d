"""``python -m pipeline.status``: the same command as ``python -m pipeline status`` (pipeline/cli/status.py), kept
under its module name for the scripts that call it so."""

import sys

from pipeline.cli.status import main

if __name__ == "__main__":
    sys.exit(main())
