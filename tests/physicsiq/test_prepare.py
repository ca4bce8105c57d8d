"""Conditions (i2v image, v2v clip), prompt variants and the benchmark's config checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pipeline.benchmarks.physicsiq.benchmark as benchmarks
from launchers.local import run_stage
from pipeline.benchmarks.physicsiq.contract import condition_clip
from pipeline.benchmarks.prompts import PromptVariantError, load_prompt_variants
from pipeline.conditions import load_condition
from pipeline.config import to_config
from pipeline.errors import ConfigError, StageError
from pipeline.items import Manifest
from pipeline.runner import is_done
from pipeline.stages.prepare import Prepare
from pipeline.store import RunStore
from tests.conftest import compose

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "prompts" / "physicsiq_synthetic_rewritten.csv"


def config(dataset_root, tmp_path, *extra):
    return to_config(
        compose(
            [
                "+experiment=demo",
                f"benchmark.root={dataset_root}",
                f"run_root={tmp_path}",
                "generator.checkpoint=unused",
                "reward.checkpoint=unused",
                "tracking=disabled",
                "benchmark.max_scenarios=1",
                *extra,
            ]
        )
    )


def prepare(cfg):
    manifest = Manifest.from_benchmark(cfg)
    store = RunStore.for_config(cfg)
    manifest.save(store)
    stage = Prepare(cfg, store, manifest)
    summary = run_stage(stage, progress=False)
    assert summary.failed == 0, summary.errors
    return stage, store, manifest


@pytest.fixture
def clips_accepted(monkeypatch):
    """A clip-conditioned generator (MAGI-1 will be one); the tiny Wan takes images only."""
    monkeypatch.setattr(benchmarks, "generator_accepts_clips", lambda kind: True)


@pytest.mark.parametrize("fps, frames, source", [(8, 24, "8FPS"), (12, 36, "30FPS")])
def test_v2v_prepare_writes_the_conditioning_clip(dataset, dataset_root, tmp_path, clips_accepted, fps, frames, source):
    cfg = config(
        dataset_root, tmp_path, "benchmark.mode=v2v", f"generator.fps={fps}", f"generator.num_frames={5 * fps + 1}"
    )
    stage, store, manifest = prepare(cfg)
    item = manifest.get(manifest.ids()[0])
    assert Path(item.condition_source).parent.name == source  # shipped at 8 fps, else the 30 FPS master
    rec = store.read("prepare", item.item_id)
    assert rec.data["mode"] == "v2v" and rec.data["frames"] == frames and rec.data["fps"] == fps
    clip = load_condition(store.path(rec.outputs["condition"]))
    assert clip.shape == (frames, 64, 64, 3) and clip.dtype == np.uint8  # 3 s at the generator's fps
    expected = condition_clip(dataset, dataset.item(item.item_id), fps, 64, 64)
    assert np.abs(clip.astype(int) - expected.astype(int)).mean() < 2  # stored near-losslessly
    assert is_done(stage, item.item_id)
    with pytest.raises(StageError, match="takes a single image; run with benchmark.mode=i2v"):
        load_condition(store.path(rec.outputs["condition"]), generator=object())


def test_v2v_with_an_image_generator_stops_before_work(dataset_root, tmp_path):
    with pytest.raises(ConfigError, match="benchmark.mode=v2v needs a generator conditioned on a video clip"):
        Manifest.from_benchmark(config(dataset_root, tmp_path, "benchmark.mode=v2v"))


def test_i2v_records_mode_and_prompt_source(dataset_root, tmp_path):
    _, store, manifest = prepare(config(dataset_root, tmp_path))
    rec = store.read("prepare", manifest.ids()[0])
    assert rec.data["mode"] == "i2v" and rec.data["prompt_source"] == "descriptions.csv"
    assert load_condition(store.path(rec.outputs["condition"])).shape == (64, 64, 3)


@pytest.mark.parametrize(
    "override, message",
    [
        ("benchmark.mode=t2v", "benchmark.mode='t2v' is not one of"),
        ("benchmark.fps=16", "benchmark.fps=16 differs from generator.fps=8"),
    ],
)
def test_benchmark_config_errors(dataset_root, tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        Manifest.from_benchmark(config(dataset_root, tmp_path, override))


def test_benchmark_fps_equal_to_the_generator_is_accepted(dataset_root, tmp_path):
    assert len(Manifest.from_benchmark(config(dataset_root, tmp_path, "benchmark.fps=8")).items) == 3


def test_shipped_prompt_variant_file(dataset_root, tmp_path):
    cfg = config(
        dataset_root,
        tmp_path,
        "benchmark.prompts=prompts/physicsiq_synthetic_rewritten.csv",
        "benchmark.max_scenarios=null",
    )
    _, store, manifest = prepare(cfg)
    table = pd.read_csv(EXAMPLE)
    by_scenario = dict(zip(table["scenario"], table["prompt"]))
    for item in manifest.items:
        assert item.prompt == by_scenario[item.scenario]
        rec = store.read("prepare", item.item_id)
        assert rec.data["prompt"] == item.prompt
        assert rec.data["prompt_source"] == "prompts/physicsiq_synthetic_rewritten.csv"
    assert [it.item_id for it in manifest.items] == [
        it.item_id
        for it in Manifest.from_benchmark(config(dataset_root, tmp_path, "benchmark.max_scenarios=null")).items
    ]  # ids unchanged


def test_prompt_variant_keys_and_errors(dataset, tmp_path):
    items = dataset.items
    path = tmp_path / "p.csv"
    pd.DataFrame({"item_id": [it.item_id for it in items], "prompt": [f"p{i}" for i in range(6)]}).to_csv(
        path, index=False
    )
    assert load_prompt_variants(path, items) == {it.item_id: f"p{i}" for i, it in enumerate(items)}
    pd.DataFrame(
        {
            "generated_video_name": [items[0].generated_video_name, "9999_x.mp4"],
            "prompt": ["only one", "unknown rows are ignored"],
        }
    ).to_csv(path, index=False)
    assert load_prompt_variants(path, items[:1]) == {items[0].item_id: "only one"}
    with pytest.raises(PromptVariantError, match="no prompt for 5 item"):
        load_prompt_variants(path, items)
    pd.DataFrame({"scenario": ["trimmed-ball-falls", "trimmed-ball-falls.mp4"], "prompt": ["a", "b"]}).to_csv(
        path, index=False
    )
    with pytest.raises(PromptVariantError, match="listed more than once"):
        load_prompt_variants(path, items)
    pd.DataFrame({"item_id": ["0001"], "scenario": ["x"], "prompt": ["a"]}).to_csv(path, index=False)
    with pytest.raises(PromptVariantError, match="exactly one key column"):
        load_prompt_variants(path, items)
    with pytest.raises(PromptVariantError, match="not found"):
        load_prompt_variants(tmp_path / "nope.csv", items)
