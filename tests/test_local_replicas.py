"""Multi-rank replicas without SLURM (cluster=local): each shard is one replica of processes
that meet through torchrun's environment; it makes the videos one process makes, bit for bit."""

from __future__ import annotations

import numpy as np

from pipeline.cli.run import run
from pipeline.video_io import read_video
from tests.conftest import compose
from tests.test_chain import magi_chain


def test_a_cfg_parallel_replica_on_this_machine_makes_the_videos_of_one_process(
    tiny_models, small_dataset, tmp_path, capfd
):
    base = ["+experiment=demo_magi1", "search.n=2", "stages=[prepare,sample]"]
    videos = {}
    for name, layout in (("one", []), ("two", ["generator.parallel.cfg=2"])):
        run_dir = run(compose([*base, *magi_chain(tiny_models, small_dataset, tmp_path / name), *layout]))
        videos[name] = {p.relative_to(run_dir): read_video(p)[0] for p in sorted((run_dir / "sample").rglob("*.mp4"))}
    assert "2 rank(s) per copy (cfg=2,sp=1,tp=1)" in capfd.readouterr().out
    assert sorted(videos["one"]) == sorted(videos["two"]) and len(videos["one"]) == 6
    for name, frames in videos["one"].items():
        assert np.array_equal(frames, videos["two"][name]), name
