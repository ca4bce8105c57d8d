"""The report and comparison pages in headless Chromium: the screenshot is not blank and every
video element on the page loads (candidates, submitted videos, ground truth)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.cli.compare import main as compare_main
from pipeline.cli.run import run
from tests.browser import screenshot, video_probe
from tests.conftest import compose

pytestmark = pytest.mark.slow


def not_blank(png) -> float:
    """The share of pixels that differ from the page's background colour."""
    import imageio.v3 as iio

    pixels = iio.imread(png)[..., :3].reshape(-1, 3)
    values, counts = np.unique(pixels, axis=0, return_counts=True)
    background = values[counts.argmax()]
    return float((pixels != background).any(axis=1).mean())


def test_report_and_compare_pages_render_and_play(one_scenario, tmp_path):
    args = [*one_scenario, "tracking.progress=false"]
    first = run(compose([*args, "search.n=2"]))
    second = run(compose([*args, "search.n=3"]))
    page = first / "report" / "outputs" / "index.html"
    shot = screenshot(page, tmp_path / "report.png")
    assert not_blank(shot) > 0.05
    probe = video_probe(page)
    items = 3
    assert probe["videos"] == items * (2 + 1 + 1)  # candidates, the submitted video, the ground truth
    assert probe["failed"] == [] and probe["loaded"] == probe["videos"]

    out = tmp_path / "cmp"
    assert compare_main([f"runs=[{first},{second}]", f"out={out}", "draws=3"]) == 0
    shot = screenshot(out / "index.html", tmp_path / "compare.png")
    assert not_blank(shot) > 0.05
    assert video_probe(out / "index.html")["videos"] == 0
