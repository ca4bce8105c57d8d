"""``python -m pipeline.resume``: the same command as ``python -m pipeline resume`` (pipeline/cli/resume.py), kept
under its module name for the scripts that call it so."""

import sys

from pipeline.cli.resume import main

if __name__ == "__main__":
    sys.exit(main())
