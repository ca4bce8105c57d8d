"""``python -m pipeline.compare ...``: the ``compare`` command (``pipeline/cli/compare.py``)."""

import sys

from pipeline.cli.compare import main

sys.exit(main())
