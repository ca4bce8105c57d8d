"""A run folder on a file system that fills up (a small tmpfs as run root): one clear line, no
partial file counted done; with space again, the same command completes the run."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.faults.audit import audit
from tests.faults.conftest import finish_run, only_run

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_is_one_line_and_the_rerun_completes(chain_args, small_disk):
    args = [a for a in chain_args if not a.startswith("run_root=")] + [f"run_root={small_disk}"]
    res = finish_run(args)
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "No space left on device" in last, res.stderr[-2000:]
    assert "free space and run the same command again" in last and "Traceback" not in res.stderr
    run = only_run(small_disk)
    partial = audit(run, require_done=False)
    assert partial.done > 0 and not partial.corrupt and not partial.duplicated, partial
    assert not list(run.rglob("*.tmp*")), "a temporary file was left behind"

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    res = finish_run(args)
    assert res.returncode == 0, res.stderr[-2000:]
    result = audit(run)
    assert result.clean and result.done == 17, result
