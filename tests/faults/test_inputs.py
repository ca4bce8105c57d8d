"""Bad things inside a run: a non-finite reward, candidate and condition files cut short, a
checkpoint folder that is incomplete or cut short."""

from __future__ import annotations

import shutil

import pytest
import torch

from pipeline.cli.run import run
from pipeline.errors import PipelineError
from pipeline.rewards.vjepa2.surprise import SurpriseScorer
from pipeline.store import RunStore
from tests.conftest import compose
from tests.faults.audit import audit
from tests.faults.conftest import finish_run, run_dir_of

pytestmark = pytest.mark.slow


def test_non_finite_reward_is_never_chosen_and_the_item_says_why(demo_overrides, monkeypatch):
    """NaN frames go through the real model: the surprise comes out NaN. Item 0001 loses one
    candidate to it; item 0002 loses both and cannot be selected; item 0003 is untouched."""
    poisoned = {("0001", "cand00"), ("0002", "cand00"), ("0002", "cand01")}
    load = SurpriseScorer._load

    def poisoned_load(self, clip):
        frames, extra = load(self, clip)
        parts = str(clip).split("/")
        if (parts[-2], parts[-1][:6]) in poisoned:
            frames = torch.full_like(frames, float("nan"))
        return frames, extra

    monkeypatch.setattr(SurpriseScorer, "_load", poisoned_load)
    with pytest.raises(PipelineError, match="some items failed"):
        run(compose([*demo_overrides, "benchmark.max_scenarios=1"]))
    store = RunStore(next(demo_run_root(demo_overrides).glob("*/run.json")).parent)
    chosen = store.read("select", "0001")
    assert chosen.done and chosen.data["chosen"] == "cand01"
    assert list(chosen.data["excluded"]) == ["cand00"]
    assert "non-finite V-JEPA surprise" in chosen.data["excluded"]["cand00"]
    failed = store.read("select", "0002")
    assert failed.status == "failed" and "no candidate has a finite surprise: cand00: " in failed.error
    assert store.read("select", "0003").data["excluded"] == {}
    assert store.read("conform", "0002") is None  # nothing downstream of the failed item


def demo_run_root(overrides):
    from pathlib import Path

    return Path(next(o for o in overrides if o.startswith("run_root=")).split("=", 1)[1]) / "demo"


def test_truncated_candidate_and_condition_are_redone_alone(chain_args):
    res = finish_run(chain_args)
    assert res.returncode == 0, res.stderr[-2000:]
    run_dir = run_dir_of(res.stdout)
    store = RunStore(run_dir)
    cand = store.path(store.read("sample", "0001").outputs["cand01"])
    other = store.path(store.read("sample", "0001").outputs["cand00"])
    condition = store.path(store.read("prepare", "0002").outputs["condition"])
    before = {p: p.read_bytes() for p in (cand, other, condition)}
    other_mtime = other.stat().st_mtime_ns
    with open(cand, "r+b") as fh:
        fh.truncate(len(before[cand]) // 2)
    with open(condition, "r+b") as fh:
        fh.truncate(10)

    res = finish_run(chain_args)
    assert res.returncode == 0, res.stderr[-2000:]
    assert condition.read_bytes() == before[condition]  # the same condition, made again
    assert other.stat().st_mtime_ns == other_mtime  # the intact candidate was kept
    result = audit(run_dir)
    assert not result.lost and not result.corrupt, result

    def done_count(stage, item):
        return sum(e["event"] == "done" for e in store.attempts(stage, item))

    assert done_count("prepare", "0002") == 2 and done_count("prepare", "0001") == 1
    assert done_count("sample", "0001") == 2 and done_count("sample", "0002") == 1  # same condition bytes


@pytest.mark.parametrize(
    "part, damage",
    [
        ("wan_i2v/transformer/diffusion_pytorch_model.safetensors", "truncate"),
        ("wan_i2v/vae/config.json", "delete"),
        ("vjepa2/tiny.pt", "truncate"),
    ],
)
def test_partial_checkpoint_is_one_line_before_any_work(chain_args, tiny_models, tmp_path, part, damage):
    copy = tmp_path / "ckpt"
    shutil.copytree(tiny_models["wan_i2v"].parent, copy)
    target = copy / part
    if damage == "delete":
        target.unlink()
    else:
        with open(target, "r+b") as fh:
            fh.truncate(target.stat().st_size - 100)
    args = [a for a in chain_args if not a.startswith(("generator.checkpoint=", "reward.checkpoint="))]
    res = finish_run([*args, f"generator.checkpoint={copy / 'wan_i2v'}", f"reward.checkpoint={copy / 'vjepa2'}"])
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and target.name in lines[0], res.stderr
    assert ("truncated" in lines[0]) == (damage == "truncate")
    assert not list((tmp_path / "runs").glob("**/items/*.json"))
