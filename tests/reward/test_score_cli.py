"""``python -m pipeline score-videos``: folder / glob / list inputs, error rows, config typos."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pipeline.cli.score_videos import main
from pipeline.rewards.vjepa2.surprise import SurpriseScorer
from pipeline.video_io import read_video, write_video

from .conftest import random_clip


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("videos")
    write_video(d / "a.mp4", random_clip(20), fps=8)
    write_video(d / "b.mp4", random_clip(24, 48, 80, seed=1), fps=8)
    write_video(d / "short.mp4", random_clip(10), fps=8)
    (d / "corrupt.mp4").write_bytes(b"not a video")
    return d


def read_rows(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {Path(r["video"]).name: r for r in csv.DictReader(f)}


def test_folder_scores_and_error_rows(videos: Path, tiny_dir: Path, tiny_model, tmp_path: Path, capsys) -> None:
    out = tmp_path / "scores.csv"
    rc = main([f"videos={videos}", f"reward.checkpoint={tiny_dir}", "reward.stride=4", f"output={out}"])
    assert rc == 3  # some rows hold errors
    rows = read_rows(out)
    assert sorted(rows) == ["a.mp4", "b.mp4", "corrupt.mp4", "short.mp4"]
    frames, _ = read_video(videos / "a.mp4")
    expected = SurpriseScorer(tiny_model, stride=4).score_frames(frames)
    a = rows["a.mp4"]
    assert float(a["surprise"]) == pytest.approx(expected.surprise, abs=1e-7) and a["error"] == ""
    assert json.loads(a["window_surprises"]) == pytest.approx(expected.window_surprises, abs=1e-7)
    assert (a["variant"], a["weights"], a["stride"], a["window_size"], a["aggregate"]) == (
        "tiny",
        "target_encoder",
        "4",
        "16",
        "mean",
    )
    assert "fewer than one window" in rows["short.mp4"]["error"] and rows["short.mp4"]["surprise"] == ""
    assert "cannot decode" in rows["corrupt.mp4"]["error"]
    assert "scored 2 of 4" in capsys.readouterr().out


def test_list_glob_and_settings(videos: Path, tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    assert (
        main(
            [
                f"videos=[{videos}/a.mp4,{videos}/b.mp4]",
                f"reward.checkpoint={tiny_dir}",
                "reward.variant=hf",
                "reward.aggregate=max",
                "reward.max_frames=18",
                f"output={out}",
            ]
        )
        == 0
    )
    rows = read_rows(out)
    assert list(rows) == ["a.mp4", "b.mp4"]
    assert rows["b.mp4"]["frames_used"] == "18" and rows["b.mp4"]["video_num_frames"] == "24"
    assert rows["a.mp4"]["variant"] == "hf" and rows["a.mp4"]["aggregate"] == "max"
    assert main([f"videos='{videos}/[ab].mp4'", f"reward.checkpoint={tiny_dir}", f"output={out}"]) == 0
    assert list(read_rows(out)) == ["a.mp4", "b.mp4"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["reward.windowsize=8"], "windowsize"),
        (["reward=vjepa2_vitg"], "looked for"),
        (["reward.variant=vitx"], "reward.variant"),
        ([], "missing required value(s): videos"),
    ],
)
def test_config_errors_exit_2(videos: Path, args: list[str], message: str, capsys, monkeypatch) -> None:
    monkeypatch.delenv("VJEPA_CHECKPOINT_DIR", raising=False)
    argv = ([f"videos={videos}/a.mp4"] if args else []) + args
    assert main(argv) == 2
    assert message in capsys.readouterr().err
