"""Figures for the reports and comparisons: matplotlib without a display, PNGs written atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pipeline.files import atomic_write_bytes


def figure(width: float = 6.0, height: float = 3.6) -> tuple[Any, Any]:
    """(figure, axes) on the Agg backend (no display on cluster nodes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def save_png(fig: Any, path: Path) -> Path:
    """Lay out, render and close ``fig``; the PNG appears whole or not at all."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
