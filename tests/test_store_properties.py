"""Run-store properties under random interleavings of work, crashes and damage (hypothesis):
a record read as done always has outputs that validate and hash to its digest, and they are the
outputs of the attempt that wrote it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pipeline.files import atomic_write_bytes
from pipeline.runner import execute, item_state
from pipeline.stages.base import Output, Stage
from pipeline.store import RunStore

ITEMS = ("a", "b", "c")


class Crash(BaseException):
    """A process killed between two system calls (not an error any handler may catch)."""


def content(item: str, version: int) -> bytes:
    return f"{item}:{version};".encode() * (1 + version % 5)


class Echo(Stage):
    """Writes one file per item, whose content depends on how many times it was asked."""

    name = "echo"

    class _Manifest:
        def ids(self):
            return list(ITEMS)

    def __init__(self, root: Path):
        super().__init__(cfg=None, store=RunStore(root), manifest=self._Manifest())
        self.version = 0

    def run(self, item_id: str) -> Output:
        self.version += 1
        path = self.store.outputs_dir(self.name) / f"{item_id}.bin"
        atomic_write_bytes(path, content(item_id, self.version))
        return Output(outputs={"file": self.store.rel(path)}, data={"version": self.version})

    # No validate of its own: whether a record may be trusted is the store's job alone here.


class StoreMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="store-props-"))
        self.stage = Echo(self.root)
        self.calls = 0

    def teardown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    @rule(item=st.sampled_from(ITEMS), crash_at=st.one_of(st.none(), st.integers(0, 5)))
    def execute(self, item, crash_at):
        """Run the item; with ``crash_at``, die at that fsync/rename (output or record)."""
        real_replace, real_fsync, real_unlink = os.replace, os.fsync, os.unlink
        seen = [0]

        def step(real):
            def call(*args, **kwargs):
                if seen[0] == crash_at:
                    raise Crash()
                seen[0] += 1
                return real(*args, **kwargs)

            return call

        os.replace, os.fsync = step(real_replace), step(real_fsync)
        os.unlink = (lambda *a, **k: None) if crash_at is not None else real_unlink  # a dead process cleans nothing
        try:
            execute(self.stage, item)
        except Crash:
            pass
        finally:
            os.replace, os.fsync, os.unlink = real_replace, real_fsync, real_unlink

    @rule(item=st.sampled_from(ITEMS), how=st.sampled_from(["truncate", "same_size", "delete", "append"]))
    def damage_output(self, item, how):
        path = self.stage.store.outputs_dir("echo") / f"{item}.bin"
        if not path.exists():
            return
        data = path.read_bytes()
        if how == "truncate":
            path.write_bytes(data[: len(data) // 2])
        elif how == "same_size":
            path.write_bytes(bytes(reversed(data)) if data != data[::-1] else b"x" * len(data))
        elif how == "delete":
            path.unlink()
        else:
            path.write_bytes(data + b"!")

    @rule(item=st.sampled_from(ITEMS), how=st.sampled_from(["delete", "garbage", "forged"]))
    def damage_record(self, item, how):
        path = self.root / "echo" / "items" / f"{item}.json"
        if not path.exists():
            return
        if how == "delete":
            path.unlink()
        elif how == "garbage":
            path.write_text(path.read_text()[:20])
        else:  # a foreign writer claims another version is done, keeping the old digest
            path.write_text(path.read_text().replace('"version": ', '"version": 1'))

    @invariant()
    def done_means_intact(self):
        store = self.stage.store
        for item in ITEMS:
            if item_state(self.stage, item, max_attempts=1000) != "done":
                continue
            rec = store.read("echo", item)
            assert rec is not None and rec.done
            assert store.content_digest(rec) == rec.digest
            path = store.path(rec.outputs["file"])
            assert path.read_bytes() == content(item, rec.data["version"])


TestStoreProperties = StoreMachine.TestCase
TestStoreProperties.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.mark.parametrize("item", ITEMS)
def test_after_any_damage_a_rerun_makes_the_item_done_again(tmp_path, item):
    stage = Echo(tmp_path)
    execute(stage, item)
    (tmp_path / "echo" / "outputs" / f"{item}.bin").write_bytes(b"damaged")
    assert item_state(stage, item, 3) == "todo"
    assert execute(stage, item).done and item_state(stage, item, 3) == "done"
