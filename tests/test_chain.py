"""The whole chain on the embedded default (tiny models, small synthetic dataset), run in-process."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline import config as config_module
from pipeline.cli.run import run
from pipeline.generators.wan.spec import WanI2VGeneratorConfig
from pipeline.stages import STAGES
from tests.conftest import compose, demo_args

pytestmark = pytest.mark.slow


def records(run_dir: Path, stage: str) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((run_dir / stage / "items").glob("*.json"))}


@pytest.fixture(scope="module")
def finished_run(tiny_models, small_dataset, tmp_path_factory):
    """One full run, shared by the tests below (they only rerun parts of it)."""
    tmp = tmp_path_factory.mktemp("chain")
    overrides = [
        "+experiment=demo",
        f"run_root={tmp / 'runs'}",
        f"benchmark.root={small_dataset}",
        f"generator.checkpoint={tiny_models['wan_i2v']}",
        f"reward.checkpoint={tiny_models['vjepa2']}",
        "tracking.wandb.mode=offline",
        "tracking.progress=false",
        "evaluate.workers=1",
        f"evaluate.mask_cache={tmp / 'masks'}",
    ]
    accessed = _track_config_reads()
    try:
        run_dir = run(compose(overrides))
        _prepare_slurm_submission(overrides + ["cluster=slurm_local"], run_dir)
    finally:
        _untrack()
    return run_dir, overrides, accessed


def test_chain_produces_score_tables_and_wandb_run(finished_run, capsys):
    run_dir, _, _ = finished_run
    summary = (run_dir / "results" / "summary.txt").read_text()
    assert "Physics-IQ score: " in summary and f"run: {run_dir}" in summary
    score = json.loads((run_dir / "results" / "summary.json").read_text())["physics_iq_score"]
    assert 0.0 <= score <= 100.0

    table = pd.read_parquet(run_dir / "results" / "items.parquet")
    assert len(table) == 6 and table["surprises"].map(len).eq(2).all()
    # the chosen seed is the argmin of the candidate surprises
    for row in table.itertuples():
        assert row.chosen_surprise == min(row.surprises)
    assert list((run_dir / "wandb").glob("offline-run-*")), "offline wandb run missing"
    sub = sorted(p.name for p in (run_dir / "conform" / "outputs" / "submission").glob("*.mp4"))
    assert len(sub) == 6 and all(n[:4].isdigit() and n[4] == "_" for n in sub)
    for rec in records(run_dir, "prepare").values():
        assert rec["data"]["resize"] == "crop"


def test_wandb_run_is_filed_by_strategy_with_scores_and_media(finished_run):
    """Offline wandb: job_type = strategy, the Verified components in the summary, the items
    table's condition images and chosen videos staged inside the run folder, and the summary's
    last line the exact command that publishes it."""
    run_dir, _, _ = finished_run
    report = records(run_dir, "report")["all"]["data"]
    logged = report["wandb"]
    assert logged["job_type"] == "best_of_n" and logged["id"] == f"demo-{run_dir.name}"
    assert logged["group"] in (None, "")  # a run outside a sweep has no group
    summary = report["summary"]
    assert {"verified/physiq", "verified/spatial_iou", "verified/mse", "compute/nfe"} <= set(summary)
    assert summary["verified/physiq"] == pytest.approx(summary["physics_iq_score_per_view"], abs=1e-9)
    staged = list((run_dir / "wandb" / "data").rglob("*"))
    with_magic = [p.read_bytes()[:12] for p in staged if p.is_file()]
    assert sum(b"ftyp" in head for head in with_magic) == 6  # one chosen video per item
    assert sum(head.startswith(b"\x89PNG") for head in with_magic) >= 6  # the conditions (and plots)
    last = (run_dir / "results" / "summary.txt").read_text().splitlines()[-1]
    assert last == f"wandb (offline), to publish: wandb sync {logged['dir']}"
    assert Path(logged["dir"]).is_dir() and Path(logged["dir"]).is_relative_to(run_dir)


def test_compute_is_counted_per_item_and_summed_in_the_summary(finished_run):

    run_dir, _, _ = finished_run
    summary = json.loads((run_dir / "results" / "summary.json").read_text())
    table = pd.read_parquet(run_dir / "results" / "items.parquet")
    # the demo's tiny Wan: 4 steps, guidance 1.0 (one pass), 2 candidates per item
    assert table["nfe"].eq(4 * 1 * 2).all()
    assert summary["compute/nfe"] == 8 * len(table) and summary["compute/vae_decodes"] == 2 * len(table)
    # 41 frames, windows of 16 every 2 frames: 13 windows per candidate
    assert table["reward_forwards"].eq(2 * 13).all() and summary["compute/reward_forwards"] == 26 * len(table)
    assert summary["compute/seconds/sample"] > 0 and summary["compute/peak_memory_mb"] > 0
    sampled = records(run_dir, "sample")
    assert sum(r["data"]["compute"]["candidates_made"] for r in sampled.values()) == 2 * len(table)
    assert "NFEs" in (run_dir / "results" / "summary.txt").read_text()


def test_rerun_does_no_model_work(finished_run, monkeypatch):
    run_dir, overrides, _ = finished_run
    before = {s: records(run_dir, s) for s in ("sample", "score", "select", "conform")}
    for stage in ("sample", "score"):
        monkeypatch.setattr(STAGES[stage], "setup", lambda self: pytest.fail(f"{self.name} loaded a model"))
    assert run(compose(overrides)) == run_dir
    for stage, recs in before.items():
        assert records(run_dir, stage) == recs, f"{stage} redid work"


def test_deleting_one_candidate_regenerates_exactly_that_one(finished_run):
    run_dir, overrides, _ = finished_run
    cands = sorted((run_dir / "sample" / "outputs").glob("*/*.mp4"))
    victim = cands[3]
    mtimes = {p: p.stat().st_mtime_ns for p in cands if p != victim}
    victim.unlink()
    run(compose(overrides))
    assert victim.exists()
    assert {p: p.stat().st_mtime_ns for p in cands if p != victim} == mtimes
    sample = records(run_dir, "sample")[victim.parent.name]
    assert sample["attempt"] == 2
    others = [r for i, r in records(run_dir, "sample").items() if i != victim.parent.name]
    assert all(r["attempt"] == 1 for r in others)


def test_truncated_candidate_is_redone(finished_run):
    run_dir, overrides, _ = finished_run
    victim = sorted((run_dir / "sample" / "outputs").glob("*/*.mp4"))[0]
    from pipeline.video_io import read_video

    original, _ = read_video(victim)
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 3])
    run(compose(overrides))
    again, _ = read_video(victim)
    assert again.shape == original.shape
    # Same seed, so the same video up to batch-composition rounding (it ran alone this time).
    diff = abs(again.astype(int) - original.astype(int))
    assert diff.mean() < 0.5 and diff.max() <= 16


def magi_chain(tiny_models, small_dataset, tmp_path) -> list[str]:
    """Overrides for the chain on the tiny MAGI-1 and one scenario (three items)."""
    m = tiny_models["magi1"]
    return [
        f"run_root={tmp_path}",
        f"benchmark.root={small_dataset}",
        "benchmark.max_scenarios=1",
        f"generator.checkpoint={m}/dit",
        f"generator.vae_checkpoint={m}/vae",
        f"generator.t5_checkpoint={m}/t5",
        f"generator.special_tokens={m}/special_tokens.npz",
        f"reward.checkpoint={tiny_models['vjepa2']}",
        "tracking=disabled",
        "evaluate.workers=1",
        f"evaluate.mask_cache={tmp_path / 'masks'}",
    ]


def test_magi1_chain_on_the_tiny_model(tiny_models, small_dataset, tmp_path):
    """generator=magi1_tiny through the whole chain: 24 fps, 144 frames per i2v candidate."""
    run_dir = run(compose(["+experiment=demo_magi1", "search.n=1", *magi_chain(tiny_models, small_dataset, tmp_path)]))
    assert records(run_dir, "sample")["0001"]["data"]["frames"] == [144]
    summary = json.loads((run_dir / "results" / "summary.json").read_text())
    assert summary["items"] == 3 and 0.0 <= summary["physics_iq_score"] <= 100.0


@pytest.mark.parametrize(
    "strategy", [["search=beam", "search.beams=1", "search.children=2"], ["search=smc", "search.particles=2"]]
)
def test_search_inside_sampling_through_the_chain(tiny_models, small_dataset, tmp_path, strategy):
    """beam and SMC on the tiny MAGI-1: sample writes the final candidates with the surprises the
    loop measured and a trace; score and select then treat them like best-of-N candidates."""
    run_dir = run(compose(["generator=magi1_tiny", *strategy, *magi_chain(tiny_models, small_dataset, tmp_path)]))
    from pipeline.generators.magi1.schedule import window_stages

    sampled, scored, chosen = (records(run_dir, s) for s in ("sample", "score", "select"))
    summary = json.loads((run_dir / "results" / "summary.json").read_text())
    assert summary["candidates_per_item"] == 2 and len(sampled) == 3
    for item, rec in sampled.items():
        search = rec["data"]["search"]
        assert len(rec["outputs"]) == 2 and len(search["surprises"]) == 2
        # 6 chunks, a window of 4: rows can branch after chunks 0 and 1 only
        assert [e["decided"] for e in search["trace"]] == [True, True, False, False, False]
        steps = len(window_stages(6, 4, 0))  # 4 steps per chunk, one per window stage
        assert rec["data"]["compute"]["reward_forwards"] > 0 and rec["data"]["compute"]["nfe"] == 3 * 2 * steps
        # the score stage reads the written mp4s: the loop's numbers up to the video codec
        rescored = [c["surprise"] for c in scored[item]["data"]["candidates"]]
        assert rescored == pytest.approx(search["surprises"], abs=0.05)
        assert chosen[item]["data"]["surprise"] == min(rescored)
    assert summary["compute/reward_forwards"] > 0 and 0.0 <= summary["physics_iq_score"] <= 100.0


def test_guidance_through_the_chain(tiny_models, small_dataset, tmp_path):
    """Reward guidance on the tiny MAGI-1: sample writes the guided candidates with a trace of every
    update and the reward's backwards in its compute; the summary has the totals."""
    guidance = ["search=guidance", "search.n=2", "search.frequency=2", "search.scale=0.05"]
    run_dir = run(compose(["generator=magi1_tiny", *guidance, *magi_chain(tiny_models, small_dataset, tmp_path)]))
    sampled, scored, chosen = (records(run_dir, s) for s in ("sample", "score", "select"))
    summary = json.loads((run_dir / "results" / "summary.json").read_text())
    for item, rec in sampled.items():
        search, compute = rec["data"]["search"], rec["data"]["compute"]
        assert search["strategy"] == "guidance" and len(rec["outputs"]) == 2
        # 6 chunks, a window of 4, 4 steps: 9 forward steps, every second one guided
        assert [e["guided_step"] for e in search["trace"]] == [0, 2, 4, 6, 8]
        assert compute["nfe"] == 3 * 2 * 9 and compute["reward_backwards"] > 0 and compute["seconds_guidance"] > 0
        rescored = [c["surprise"] for c in scored[item]["data"]["candidates"]]
        assert rescored == pytest.approx(search["surprises"], abs=0.05)
        assert chosen[item]["data"]["surprise"] == min(rescored)
    assert summary["compute/reward_backwards"] > 0 and "compute/seconds/sample.guidance" in summary
    table = pd.read_parquet(run_dir / "results" / "items.parquet")
    assert (table["reward_backwards"] > 0).all() and table["chosen_surprise"].notna().all()


def test_every_config_field_is_read(finished_run):
    """No dead flags: every field of every config dataclass used by the demo is read by code."""
    _, _, accessed = finished_run
    unread = []
    for cls in _config_classes():
        for f in dataclasses.fields(cls):
            if (cls.__name__, f.name) not in accessed:
                unread.append(f"{cls.__name__}.{f.name}")
    assert not unread, f"config fields never read by the pipeline: {unread}"


def _prepare_slurm_submission(overrides, run_dir):
    """Everything the SLURM launcher reads before sbatch: the plan and each stage's executor."""
    from launchers.shard import ShardJob, ShardSpec
    from launchers.slurm import executor_for, plan_chain
    from pipeline.config import to_config
    from pipeline.items import Manifest
    from pipeline.store import RunStore

    cfg = to_config(compose(overrides))
    manifest = Manifest.load(RunStore(run_dir))
    fresh = RunStore(run_dir.parent / "fresh")  # nothing done yet: every stage is planned
    manifest.save(fresh)
    assert [p.stage for p in plan_chain(cfg, fresh, manifest)] == list(cfg.stages)
    for stage in cfg.stages:
        executor_for(cfg, fresh, stage, dependency=None)
    result = ShardJob(cfg, str(run_dir)).run_shard(ShardSpec("prepare", 0, manifest.ids()))
    assert result.skipped == manifest.ids()  # finished items are never redone by a shard


# ---- config read tracking ----------------------------------------------------------------------
_ORIGINAL = {}


def _config_classes():
    """Config and the classes of its fields (other generators' schemas are checked statically)."""
    classes = {config_module.Config}
    todo = [config_module.Config, WanI2VGeneratorConfig, config_module.StageResources]
    while todo:
        cls = todo.pop()
        classes.add(cls)
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if dataclasses.is_dataclass(default) and type(default) not in classes:
                todo.append(type(default))
    return classes


def _track_config_reads() -> set:
    accessed: set = set()
    ignored = ("pipeline/config.py", "pipeline/fields.py", "omegaconf", "dataclasses.py", "/tests/")

    def getattribute(self, name, _get=object.__getattribute__):
        if name in _get(self, "__dataclass_fields__"):
            caller = sys._getframe(1).f_code.co_filename
            if not any(part in caller for part in ignored):
                accessed.add((type(self).__name__, name))
        return _get(self, name)

    for cls in _config_classes():
        _ORIGINAL[cls] = cls.__dict__.get("__getattribute__")
        cls.__getattribute__ = getattribute
    return accessed


def _untrack() -> None:
    for cls, original in _ORIGINAL.items():
        if original is None:
            del cls.__getattribute__
        else:
            cls.__getattribute__ = original
    _ORIGINAL.clear()


def test_geophys_best_of_n_through_the_chain(tiny_models, small_dataset, tmp_path):
    """reward=geophys on the Wan demo: every candidate keeps its five statistics, its surprise is
    its fused rank among the item's candidates, and select keeps the lowest."""
    from pipeline.rewards.fusion import rank_fuse
    from pipeline.rewards.geophys.trajectory import STATISTICS

    args = [a for a in demo_args(tiny_models, small_dataset, tmp_path) if not a.startswith("reward.checkpoint=")]
    geophys = ["reward=geophys_tiny", f"reward.checkpoint={tiny_models['dinov2']}", "search.n=3"]
    run_dir = run(compose([*args, *geophys, "benchmark.max_scenarios=1"]))
    scored, chosen = records(run_dir, "score"), records(run_dir, "select")
    assert len(scored) == 3
    for item, rec in scored.items():
        candidates = rec["data"]["candidates"]
        stats = [c["statistics"] for c in candidates]
        assert [c["surprise"] for c in candidates] == pytest.approx(
            rank_fuse([[s[k] for s in stats] for k in STATISTICS])
        )
        assert chosen[item]["data"]["surprise"] == min(c["surprise"] for c in candidates)
        assert rec["data"]["compute"]["reward_forwards"] == sum(c["frames_used"] for c in candidates)


def test_ensemble_beam_search_on_magi1(tiny_models, small_dataset, tmp_path):
    """reward=ensemble (V-JEPA 2 + GeoPhys) inside beam search: both members score the videos so
    far at every boundary, and the rescored final candidates rank as the loop ranked them."""
    chain = [a for a in magi_chain(tiny_models, small_dataset, tmp_path) if not a.startswith("reward.checkpoint=")]
    members = (
        f"reward.members=[{{name: vjepa2_surprise, variant: tiny, checkpoint: {tiny_models['vjepa2']}}},"
        f"{{name: geophys, checkpoint: {tiny_models['dinov2']}, image_size: 32}}]"
    )
    beam = ["search=beam", "search.beams=1", "search.children=2"]
    run_dir = run(compose(["generator=magi1_tiny", "reward=ensemble_tiny", members, *beam, *chain]))
    sampled, scored = records(run_dir, "sample"), records(run_dir, "score")
    for item, rec in sampled.items():
        search = rec["data"]["search"]
        assert [e["decided"] for e in search["trace"]][:2] == [True, True]
        rescored = [c["surprise"] for c in scored[item]["data"]["candidates"]]
        assert all(len(c["members"]) == 2 for c in scored[item]["data"]["candidates"])
        # two candidates, two members: each member ranks them 0 and 1 (or ties them at 0.5)
        assert set(rescored) <= {0.0, 0.5, 1.0} and set(search["surprises"]) <= {0.0, 0.5, 1.0}
        assert sum(rescored) == pytest.approx(1.0) and rec["data"]["compute"]["reward_forwards"] > 0


def test_wan22_two_experts_with_an_adapter_and_guidance(tiny_models, small_dataset, tmp_path):
    """generator=wan22_tiny (two experts) with the tiny velocity adapter, guided by the reward:
    every step runs one expert and its adapter, the guide acts before every scheduler step."""
    args = demo_args(tiny_models, small_dataset, tmp_path)
    args = [a for a in args if not a.startswith(("generator.checkpoint=", "+experiment="))]
    wan22 = [
        "generator=wan22_tiny",
        f"generator.checkpoint={tiny_models['wan22_i2v']}",
        f"generator.adapter={tiny_models['wan_adapter']}",
        "generator.guidance_scale=1.0",  # one pass per step
    ]
    guidance = ["search=guidance", "search.n=2", "search.scale=0.1", "search.frequency=2"]
    run_dir = run(compose([*args, *wan22, *guidance, "benchmark.max_scenarios=1"]))
    sampled, scored, chosen = (records(run_dir, s) for s in ("sample", "score", "select"))
    for item, rec in sampled.items():
        search, compute = rec["data"]["search"], rec["data"]["compute"]
        assert search["strategy"] == "guidance" and len(rec["outputs"]) == 2
        assert [e["guided_step"] for e in search["trace"]] == [0, 2]
        assert compute["nfe"] == 2 * 4 and compute["reward_backwards"] > 0
        rescored = [c["surprise"] for c in scored[item]["data"]["candidates"]]
        assert rescored == pytest.approx(search["surprises"], abs=0.05)
        assert chosen[item]["data"]["surprise"] == min(rescored)


def test_cogvideox_chain_records_what_conform_trims(tiny_models, small_dataset, tmp_path):
    """generator=cogvideox_tiny (the 5B I2V layout: 49 frames at 8 fps) through the whole chain:
    conform drops the condition frame, keeps 5 s (40 frames) and records the 8 it trims."""
    args = demo_args(tiny_models, small_dataset, tmp_path)
    args = [a for a in args if not a.startswith(("generator.checkpoint=", "+experiment="))]
    cog = ["generator=cogvideox_tiny", f"generator.checkpoint={tiny_models['cogvideox_i2v']}", "search.n=2"]
    run_dir = run(compose([*args, *cog, "benchmark.max_scenarios=1"]))
    sampled, conformed = records(run_dir, "sample"), records(run_dir, "conform")
    summary = json.loads((run_dir / "results" / "summary.json").read_text())
    assert summary["items"] == 3 and 0.0 <= summary["physics_iq_score"] <= 100.0
    for item, rec in conformed.items():
        assert sampled[item]["data"]["frames"] == [49, 49]
        assert rec["data"]["generated_frames"] == 49 and rec["data"]["frames"] == 40
        assert rec["data"]["trimmed_frames"] == 8 and rec["data"]["dropped_first_frame"] is True
        assert sampled[item]["data"]["compute"]["nfe"] == 2 * 4 * 2  # candidates x steps x CFG
