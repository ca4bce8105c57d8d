"""``python -m pipeline.tiny_models [out=DIR]``: the same command as ``python -m pipeline tiny-models``,
kept under its module name for the scripts that call it so."""

import sys

from pipeline.cli.tiny_models import main

if __name__ == "__main__":
    sys.exit(main())
