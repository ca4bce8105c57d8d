"""Per-stage caches: runs share the stage work their settings have in common, growing N makes only
the new candidates, a reward change rescores without regenerating, old run folders still read, and
``cache prune`` removes only what no run uses."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pipeline.cli.cache import main as cache_main
from pipeline.cli.run import run
from pipeline.files import file_digest
from pipeline.stage_cache import CACHED, CandidatePool, entries
from tests.conftest import compose

pytestmark = pytest.mark.slow


def records(run_dir: Path, stage: str) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((run_dir / stage / "items").glob("*.json"))}


def entry_of(run_dir: Path, stage: str) -> Path:
    return (run_dir / stage).resolve()


@pytest.fixture
def args(one_scenario) -> list[str]:
    return [*one_scenario, "tracking.progress=false"]


def test_growing_n_makes_only_the_new_candidates(args):
    small = run(compose([*args, "search.n=2"]))
    grown = run(compose([*args, "search.n=4"]))
    assert entry_of(small, "prepare") == entry_of(grown, "prepare")
    assert entry_of(small, "sample") != entry_of(grown, "sample")
    before, after = records(small, "sample"), records(grown, "sample")
    assert len(after) == 3
    for item, rec in after.items():
        compute = rec["data"]["compute"]
        assert (compute["candidates_made"], compute["candidates_pooled"]) == (2, 2)
        # the run is charged for all its candidates, whichever run made them
        assert compute["nfe"] == 2 * before[item]["data"]["compute"]["nfe"]
        for name in ("cand00", "cand01"):
            assert os.path.samefile(small / before[item]["outputs"][name], grown / rec["outputs"][name])
        assert rec["data"]["seeds"] == [0, 1, 2, 3]


def test_reward_change_rescores_without_regenerating(args):
    first = run(compose(args))
    sampled = {i: r["started"] for i, r in records(first, "sample").items()}
    other = run(compose([*args, "reward.stride=4"]))
    assert other != first
    for stage in ("prepare", "sample"):
        assert entry_of(first, stage) == entry_of(other, stage)
    for stage in ("score", "select", "conform", "evaluate"):
        assert entry_of(first, stage) != entry_of(other, stage)
    assert {i: r["started"] for i, r in records(other, "sample").items()} == sampled  # not one regenerated
    scored = records(other, "score")
    assert all(c["settings"]["stride"] == 4 for r in scored.values() for c in r["data"]["candidates"])


def test_conform_change_redoes_only_conform_and_evaluate(args):
    first = run(compose(args))
    other = run(compose([*args, "conform.drop_first_frame=false"]))
    for stage in ("prepare", "sample", "score", "select"):
        assert entry_of(first, stage) == entry_of(other, stage)
    for stage in ("conform", "evaluate"):
        assert entry_of(first, stage) != entry_of(other, stage)


def test_tampered_pooled_candidate_is_made_again(args):
    small = run(compose([*args, "search.n=1"]))
    pool = CandidatePool(small.parent.parent / "cache")
    videos = sorted(pool.root.glob("*/*/seed0.mp4"))
    assert len(videos) == 3
    victim = videos[0]
    data = victim.read_bytes()
    victim.unlink()  # the run's own copy keeps its content: a new file under the pool's name
    victim.write_bytes(data[: len(data) // 2])
    grown = run(compose([*args, "search.n=2"]))
    made = sorted(r["data"]["compute"]["candidates_made"] for r in records(grown, "sample").values())
    assert made == [1, 1, 2]  # the item whose pooled seed 0 no longer hashes makes it again
    assert CandidatePool.lookup(victim) is not None  # and the pool holds the sound one again


def test_run_folder_from_before_the_caches_still_reads(args, tmp_path):
    first = run(compose(args))
    old_root = tmp_path / "old_runs"
    legacy = old_root / first.parent.name / first.name
    shutil.copytree(first, legacy, symlinks=False)  # stage folders as plain folders, as runs were
    for stage in CACHED:
        assert (legacy / stage).is_dir() and not (legacy / stage).is_symlink()
    started = {s: {i: r["started"] for i, r in records(legacy, s).items()} for s in CACHED}
    again = run(compose([*[a for a in args if not a.startswith("run_root=")], f"run_root={old_root}"]))
    assert again == legacy
    for stage in CACHED:
        assert not (legacy / stage).is_symlink()
        assert {i: r["started"] for i, r in records(legacy, stage).items()} == started[stage]


def test_a_partly_old_run_folder_links_nothing(args, tmp_path):
    """Plain prepare and sample folders (a run from before the caches that stopped after sample):
    the later stages stay plain too, never shared entries downstream of private inputs."""
    first = run(compose([*args, "stages=[prepare,sample]"]))
    old_root = tmp_path / "old_runs"
    legacy = old_root / first.parent.name / first.name
    shutil.copytree(first, legacy, symlinks=False)
    again = run(compose([*[a for a in args if not a.startswith("run_root=")], f"run_root={old_root}"]))
    assert again == legacy
    for stage in CACHED:
        assert (legacy / stage).is_dir() and not (legacy / stage).is_symlink(), stage
    assert not (old_root / "cache" / "score").exists()


def test_candidates_are_numbered_in_index_order():
    from pipeline.stages.score import candidate_order

    outputs = {f"cand{k:02d}": f"v{k}" for k in (0, 11, 100, 2)}
    assert [name for name, _ in candidate_order(outputs)] == ["cand00", "cand02", "cand11", "cand100"]


def test_experiment_names_are_one_folder(args):
    from pipeline.config import to_config
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="one folder name"):
        to_config(compose([*args, "name=abl/reward"]))


def test_cache_lists_and_prunes_what_no_run_uses(args, capsys):
    small = run(compose([*args, "search.n=2"]))
    grown = run(compose([*args, "search.n=3"]))
    run_root = small.parent.parent
    capsys.readouterr()
    assert cache_main([f"run_root={run_root}"]) == 0
    listing = capsys.readouterr().out
    prepare = next(line for line in listing.splitlines() if line.startswith("prepare"))
    assert f"demo/{small.name}" in prepare and f"demo/{grown.name}" in prepare  # shared
    kept = {s: entry_of(small, s) for s in CACHED}
    shutil.rmtree(grown)
    assert cache_main([f"run_root={run_root}", "prune=true", "dry_run=true"]) == 0
    assert "would remove 5 entries and 3 pooled candidate(s)" in capsys.readouterr().out
    assert len(entries(run_root)) == 11
    assert cache_main([f"run_root={run_root}", "prune=true"]) == 0
    assert "removed 5 entries and 3 pooled candidate(s)" in capsys.readouterr().out
    left = entries(run_root)
    assert {e.path.resolve() for e in left} == set(kept.values())
    assert all(e.runs == [small] for e in left)
    pooled = sorted(CandidatePool(run_root / "cache").root.glob("*/*/seed*.mp4"))
    assert len(pooled) == 6  # seeds 0 and 1 of the three items, still held by the first run
    for rec in records(small, "sample").values():
        for rel in rec["outputs"].values():
            assert file_digest(small / rel)  # the first run's candidates are untouched
    assert cache_main([f"run_root={run_root / 'nowhere'}"]) == 2
    assert "no stage caches there" in capsys.readouterr().err


def test_experiment_named_cache_is_refused(args):
    from pipeline.config import to_config
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="holds the stage caches"):
        to_config(compose([*args, "name=cache"]))
