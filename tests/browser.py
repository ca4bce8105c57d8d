"""Headless Chromium for the page tests: Debian's ``chromium``, installed on the spot where this
runs as root with apt (as CI does), otherwise the test is skipped saying why."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
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


def browse(*args: str, timeout: int) -> subprocess.CompletedProcess:
    """One headless Chromium call on a profile of its own (two browsers on one profile hand the
    page to each other, and the second exits without it)."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio"]
        return subprocess.run(
            [chromium(), *flags, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=timeout
        )


def screenshot(page: Path, out: Path, size: str = "1400,1400") -> Path:
    res = browse(
        f"--window-size={size}",
        "--virtual-time-budget=5000",
        f"--screenshot={out}",
        page.resolve().as_uri(),
        timeout=120,
    )
    assert res.returncode == 0 and out.exists(), f"no screenshot: {res.stderr[-500:]}"
    return out


def video_probe(page: Path, attempts: int = 3) -> dict[str, object]:
    """How many ``<video>`` elements the page has, how many loaded, which failed. Headless Chrome
    dumps the page when its virtual time budget runs out, and media reads do not hold virtual time
    back: on a busy machine the probe may not have finished by then, so it is tried again with a
    longer budget before the test gives up."""
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    errors = ""
    try:
        for attempt in range(attempts):
            budget = 20000 * 3**attempt
            res = browse(f"--virtual-time-budget={budget}", "--dump-dom", probe.resolve().as_uri(), timeout=300)
            found = re.search(r'data-probe="videos=(\d+);loaded=(\d+);failed=([^"]*)"', res.stdout)
            if found:
                failed = [f for f in found[3].split("|") if f]
                return {"videos": int(found[1]), "loaded": int(found[2]), "failed": failed}
            errors = res.stderr[-500:]
    finally:
        probe.unlink()
    raise AssertionError(f"the probe did not finish in {attempts} tries: {errors}")
