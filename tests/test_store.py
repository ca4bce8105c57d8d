import json
import os

import pytest

from pipeline.config import to_config
from pipeline.files import atomic_write_text
from pipeline.store import Record, RunStore, run_key
from tests.conftest import compose


def test_atomic_write_leaves_no_temp_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    atomic_write_text(target, "old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_run_folder_layout_and_records(tmp_path):
    cfg = to_config(compose([f"run_root={tmp_path}", "+experiment=demo"]))
    store = RunStore.for_config(cfg)
    store.save_config("composed: 1\n", "resolved: 1\n")
    assert store.root == tmp_path / "demo" / run_key(cfg)
    for name in ("config.yaml", "resolved.yaml", "run.json"):
        assert (store.root / name).is_file()
    out = store.outputs_dir("sample") / "x.txt"
    out.parent.mkdir(parents=True)
    out.write_text("payload")
    rec = store.write("sample", Record(item="0001", status="done", outputs={"x": store.rel(out)}, data={"k": 1}))
    again = store.read("sample", "0001")
    assert again == rec and again.done and again.digest
    out.write_text("changed")
    assert store.content_digest(again) != again.digest


def test_broken_record_reads_as_absent(tmp_path):
    store = RunStore(tmp_path)
    path = tmp_path / "score" / "items" / "0001.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert store.read("score", "0001") is None
    path.write_text(json.dumps({"unexpected": 1}))
    assert store.read("score", "0001") is None
