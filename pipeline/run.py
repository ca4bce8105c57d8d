"""``python -m pipeline.run``: the same command as ``python -m pipeline run`` (pipeline/cli/run.py), kept
under its module name for the scripts that call it so."""

import sys

from pipeline.cli.run import main

if __name__ == "__main__":
    sys.exit(main())
