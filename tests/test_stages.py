"""Each stage on its own, on a one-scenario run (three items) of the tiny models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from launchers.local import run_stage
from pipeline.conditions import decode_png
from pipeline.config import to_config
from pipeline.items import Manifest
from pipeline.stages import STAGES, build_stage
from pipeline.stages.select import argmin_surprise
from pipeline.store import RunStore
from pipeline.video_io import probe_video, read_video
from tests.conftest import compose


def open_run(overrides):
    raw = compose(overrides + ["benchmark.max_scenarios=1"])
    cfg = to_config(raw)
    manifest = Manifest.from_benchmark(cfg)
    store = RunStore.for_config(cfg)
    manifest.save(store)
    return cfg, store, manifest


def stage(name, cfg, store, manifest):
    return build_stage(name, cfg, store, manifest)


@pytest.fixture
def run_upto(demo_overrides):
    def _run(last: str, extra=()):
        cfg, store, manifest = open_run(demo_overrides + list(extra))
        for name in STAGES:
            summary = run_stage(stage(name, cfg, store, manifest), progress=False)
            assert summary.failed == 0, summary.errors
            if name == last:
                break
        return cfg, store, manifest

    return _run


def test_prepare_crops_by_default_and_records_it(run_upto):
    cfg, store, manifest = run_upto("prepare")
    rec = store.read("prepare", manifest.ids()[0])
    assert rec.data["resize"] == "crop"
    img = decode_png(store.path(rec.outputs["condition"]))
    assert img.shape == (cfg.generator.height, cfg.generator.width, 3)


def test_prepare_stretch_gives_a_different_condition(run_upto):
    _, crop_store, manifest = run_upto("prepare")
    _, stretch_store, _ = run_upto("prepare", ["prepare.resize=stretch"])
    item = manifest.ids()[0]
    a = decode_png(crop_store.path(crop_store.read("prepare", item).outputs["condition"]))
    b = decode_png(stretch_store.path(stretch_store.read("prepare", item).outputs["condition"]))
    assert stretch_store.read("prepare", item).data["resize"] == "stretch"
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1  # the synthetic frames are 16:9


def test_sample_writes_n_candidates_with_seeds_base_plus_k(run_upto):
    cfg, store, manifest = run_upto("sample", ["search.base_seed=7"])
    rec = store.read("sample", manifest.ids()[0])
    assert rec.data["seeds"] == [7, 8]
    for rel in rec.outputs.values():
        frames, fps = read_video(store.path(rel))
        assert frames.shape == (cfg.generator.num_frames, 64, 64, 3) and fps == cfg.generator.fps


def test_score_reuses_scores_by_video_content(run_upto):
    cfg, store, manifest = run_upto("score")
    item = manifest.ids()[0]
    before = store.read("score", item)
    score = stage("score", cfg, store, manifest)
    score.setup()
    again = score.run(item)
    assert score.scored == 0  # same videos, same settings: nothing rescored
    assert again.data["candidates"] == before.data["candidates"]
    assert again.data["compute"]["reward_forwards"] == 0 < before.data["compute"]["reward_forwards"]
    assert all(0.0 <= c["surprise"] <= 2.0 for c in before.data["candidates"])


def test_select_picks_the_argmin_and_passes_over_non_finite():
    cands = [
        {"name": "cand00", "seed": 0, "surprise": 0.5},
        {"name": "cand01", "seed": 1, "surprise": 0.2},
        {"name": "cand02", "seed": 2, "surprise": 0.2},
    ]
    assert argmin_surprise(cands) == (cands[1], {})  # ties go to the lowest seed
    cands[1]["surprise"] = math.nan
    cands[2].update(surprise=None, error="non-finite V-JEPA surprise in windows [0] (of 3)")
    assert argmin_surprise(cands) == (
        cands[0],
        {"cand01": "surprise is nan", "cand02": "non-finite V-JEPA surprise in windows [0] (of 3)"},
    )
    cands[0]["surprise"] = -math.inf
    with pytest.raises(ValueError, match="no candidate has a finite surprise: cand00: surprise is -inf"):
        argmin_surprise(cands)


@pytest.mark.parametrize("drop", [True, False])
def test_conform_cuts_exactly_five_seconds(run_upto, drop):
    cfg, store, manifest = run_upto("conform", [f"conform.drop_first_frame={str(drop).lower()}"])
    item = manifest.get(manifest.ids()[0])
    rec = store.read("conform", item.item_id)
    path = store.path(rec.outputs["video"])
    assert path.name == item.submission_name and path.name.startswith(item.item_id + "_")
    info = probe_video(path)
    assert info.num_frames == 40 and abs(info.duration - 5.0) <= 1e-3 and info.fps == 8
    chosen = store.path(store.read("select", item.item_id).data["video"])
    assert chosen.exists()  # the candidate is copied, never moved
    src, _ = read_video(chosen)
    out, _ = read_video(path)
    first = 1 if drop else 0
    err = [np.abs(out[0].astype(int) - src[k].astype(int)).mean() for k in (0, 1)]
    assert err[first] < err[1 - first]


def test_failed_item_is_recorded_and_others_go_on(run_upto, monkeypatch):
    cfg, store, manifest = run_upto("score")
    bad = manifest.ids()[1]
    original = STAGES["select"].run

    def flaky(self, item_id):
        if item_id == bad:
            raise RuntimeError("corrupt input")
        return original(self, item_id)

    monkeypatch.setattr(STAGES["select"], "run", flaky)
    summary = run_stage(stage("select", cfg, store, manifest), progress=False)
    assert (summary.ran, summary.failed) == (2, 1)
    rec = store.read("select", bad)
    assert rec.status == "failed" and "corrupt input" in rec.error and "Traceback" in rec.error
    downstream = run_stage(stage("conform", cfg, store, manifest), progress=False)
    assert (downstream.ran, downstream.blocked) == (2, 1)


def test_png_decoding_survives_decord_being_loaded_first(tmp_path):
    """decord bundles a zlib that, when loaded before OpenCV, breaks OpenCV's PNG decoder; a
    requeued shard validates videos (decord) before it reads its first condition (PNG)."""
    import subprocess
    import sys

    from pipeline.conditions import encode_png

    png = tmp_path / "c.png"
    png.write_bytes(encode_png(np.full((8, 8, 3), 7, np.uint8)))
    code = (
        "from pipeline.video_io import read_video\n"
        "try:\n    read_video('/nonexistent.mp4')\nexcept Exception:\n    pass\n"
        f"from pipeline.conditions import decode_png\nprint(decode_png({str(png)!r})[0, 0, 0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "7", out.stderr
