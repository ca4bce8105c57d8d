"""Headless Chromium for the page tests: Debian's ``chromium``, installed on the spot where this
runs as root with apt (as CI does), otherwise the test is skipped saying why."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome")

# Appended to a copy of a page: once every video has loaded its first frame or failed, the body
# says how many of each (the page itself carries no test code).
PROBE = """<script>
window.addEventListener('load', function(){
  var vids = Array.from(document.querySelectorAll('video')), left = vids.length, ok = 0, bad = [];
  function done(){ document.body.setAttribute('data-probe', 'videos=' + vids.length + ';loaded=' + ok + ';failed=' + bad.join('|')); }
  if (!left) done();
  vids.forEach(function(v){
    function fin(good){ if (v.dataset.seen) return; v.dataset.seen = 1; if (good) ok++; else bad.push(v.getAttribute('src')); if (--left === 0) done(); }
    v.addEventListener('loadeddata', function(){ fin(true); });
    v.addEventListener('error', function(){ fin(false); });
    v.preload = 'auto'; v.load();
  });
});
</script>"""


def find_chromium() -> str | None:
    for name in NAMES:
        if path := shutil.which(name):
            return path
    return None


def chromium() -> str:
    """The browser's path, installing it first where that is possible; skips the test otherwise."""
    path = find_chromium()
    if path:
        return path
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            "headless Chromium is not installed and cannot be here (needs root and apt-get): apt-get install chromium"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if res.returncode != 0:
            pytest.skip(f"headless Chromium could not be installed ({' '.join(cmd)}: {res.stderr.strip()[-300:]})")
    path = find_chromium()
    if path is None:
        pytest.skip("apt-get installed chromium but no browser binary is on PATH")
    return path


def _flags() -> list[str]:
    return ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio"]


def screenshot(page: Path, out: Path, size: str = "1400,1400") -> Path:
    subprocess.run(
        [
            chromium(),
            *_flags(),
            f"--window-size={size}",
            "--virtual-time-budget=5000",
            f"--screenshot={out}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return out


def video_probe(page: Path) -> dict[str, object]:
    """How many ``<video>`` elements the page has, how many loaded, which failed."""
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    try:
        res = subprocess.run(
            [chromium(), *_flags(), "--virtual-time-budget=20000", "--dump-dom", probe.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        probe.unlink()
    found = re.search(r'data-probe="videos=(\d+);loaded=(\d+);failed=([^"]*)"', res.stdout)
    assert found, f"the probe did not finish: {res.stderr[-500:]}"
    return {"videos": int(found[1]), "loaded": int(found[2]), "failed": [f for f in found[3].split("|") if f]}
