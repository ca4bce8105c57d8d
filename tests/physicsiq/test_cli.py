"""``python -m pipeline evaluate-folder``, the vectorised metrics, and the fast path against the baseline."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pipeline.benchmarks.physicsiq.evaluator import evaluate_folder
from pipeline.benchmarks.physicsiq.metrics import iou_frames, mse_frames
from pipeline.cli.evaluate_folder import main

from .conftest import FPS, make_submission


@pytest.fixture(scope="module")
def take2_folder(dataset, tmp_path_factory):
    return make_submission(
        dataset, tmp_path_factory.mktemp("cli") / "take2-model", lambda it: dataset.testing_clip(it, FPS, 2)
    )


def test_cli_prints_the_score_and_writes_outputs(take2_folder, dataset_root, mask_cache, tmp_path, capsys):
    rc = main(
        [
            f"benchmark.root={dataset_root}",
            f"generated={take2_folder}",
            f"output={tmp_path / 'out'}",
            f"evaluate.mask_cache={mask_cache}",
            "evaluate.workers=1",
            "benchmark.mode=v2v",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    first = out.splitlines()[0]
    assert first.startswith("Physics-IQ score: ") and float(first.split(": ")[1]) == pytest.approx(100, abs=0.01)
    assert "Solid Mechanics" in out and "Magnetism" in out
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [
        "take2-model.csv",
        "take2-model_categories.csv",
        "take2-model_categories.png",
        "take2-model_metrics.json",
    ]
    payload = json.loads((tmp_path / "out" / "take2-model_metrics.json").read_text())
    assert payload["fps"] == FPS and payload["mode"] == "v2v" and payload["prompts"] == "descriptions.csv"


def test_cli_descriptions_beside_the_root_and_fps_check(take2_folder, dataset_root, mask_cache, tmp_path, capsys):
    root = tmp_path / "physics-IQ-benchmark"
    shutil.copytree(dataset_root, root, ignore=shutil.ignore_patterns("full-videos", ".cache", "descriptions.csv"))
    (tmp_path / "descriptions").mkdir()
    shutil.copy(dataset_root / "descriptions.csv", tmp_path / "descriptions" / "descriptions.csv")
    args = [
        f"benchmark.root={root}",
        f"output={tmp_path / 'out'}",
        f"evaluate.mask_cache={mask_cache}",
        "evaluate.workers=1",
        "benchmark.max_scenarios=1",
    ]
    # max_scenarios keeps the first scenario: the folder's other three files are extra ids
    assert main(args + [f"generated={take2_folder}"]) == 2
    assert "ids not in the benchmark (3): 0004, 0005, 0006" in capsys.readouterr().err
    first = tmp_path / "first-scenario"
    first.mkdir()
    for p in sorted(take2_folder.iterdir())[:3]:
        shutil.copy(p, first / p.name)
    assert main(args + [f"generated={first}", "benchmark.fps=16"]) == 2
    assert "generations are 8 fps but fps=16 was requested" in capsys.readouterr().err
    assert main(args + [f"generated={first}", "benchmark.fps=8"]) == 0
    assert capsys.readouterr().out.startswith("Physics-IQ score: ")


@pytest.mark.parametrize("arg, key", [("benchmark.rooot=x", "rooot"), ("generatd=x", "generatd")])
def test_cli_typo_names_the_key(arg, key, capsys):
    assert main([arg, "generated=x", "output=y"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"Key '{key}' not in" in err


def test_cli_missing_values(capsys):
    assert main(["generated=x"]) == 2
    assert "missing required value(s): benchmark.root, output" in capsys.readouterr().err


def test_vectorised_metrics_equal_per_frame_formulas():
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (37, 18, 30, 3), dtype=np.uint8) for _ in range(2))
    official = [
        np.mean(((f1 / 255.0).astype(np.float32) - (f2 / 255.0).astype(np.float32)) ** 2) for f1, f2 in zip(a, b)
    ]
    assert mse_frames(a, b) == [float(x) for x in official]  # bit for bit
    m1, m2 = a > 200, b > 200
    m2[3] = m1[3] = False  # both empty: IoU 1
    ref = [1.0 if not (x | y).any() else np.logical_and(x, y).sum() / np.logical_or(x, y).sum() for x, y in zip(m1, m2)]
    assert iou_frames(m1, m2) == ref


def test_fast_evaluator_equals_the_per_frame_baseline(dataset, dataset_root, tmp_path):
    from bench.physicsiq_naive import evaluate_naive

    gen = make_submission(dataset, tmp_path / "late", lambda it: _late(dataset, it))
    comp, naive_csv = evaluate_naive(dataset_root, gen, tmp_path / "naive")
    cache = tmp_path / "cache"
    cold = evaluate_folder(dataset_root, gen, tmp_path / "fast", workers=2, mask_cache=cache)
    assert cold.score == comp.score and cold.files["csv"].read_bytes() == naive_csv.read_bytes()
    entries = sorted((cache / "grid").rglob("*.npy"))
    assert len(entries) == 3 * 2 * len(dataset)  # frames, mask bits, mask counts of every take-1/take-2 clip
    stamps = [p.stat().st_mtime_ns for p in entries]
    warm = evaluate_folder(dataset_root, gen, tmp_path / "fast2", workers=1, mask_cache=cache)
    assert warm.files["csv"].read_bytes() == naive_csv.read_bytes()
    assert [p.stat().st_mtime_ns for p in entries] == stamps  # ground truth reused, not rebuilt


def _late(dataset, it):
    from pipeline.video_io import read_video

    frames, _ = read_video(dataset.testing_clip(it, FPS, 1))
    return np.concatenate([frames[:1], frames[:-1]])


def test_shipped_real_masks_are_used_as_they_are(dataset, dataset_root, take2_folder, mask_cache, tmp_path):
    from pipeline.benchmarks.physicsiq.layout import PhysicsIQDataset
    from pipeline.benchmarks.physicsiq.masks import make_mask_video

    root = tmp_path / "ds"
    shutil.copytree(dataset_root, root, ignore=shutil.ignore_patterns("full-videos", ".cache"))
    ds = PhysicsIQDataset(root)
    for it in ds:
        for take in (1, 2):  # "downloaded" masks, made the official way
            make_mask_video(ds.testing_clip(it, FPS, take), ds.real_mask(it, FPS, take))
    shipped = evaluate_folder(root, take2_folder, tmp_path / "a", mask_cache=tmp_path / "c1")
    computed = evaluate_folder(dataset_root, take2_folder, tmp_path / "b", mask_cache=mask_cache)
    assert shipped.files["csv"].read_bytes() == computed.files["csv"].read_bytes()
    # a damaged shipped mask changes the score: it is read, not recomputed
    make_mask_video(ds.testing_clip(ds.items[0], FPS, 2), ds.real_mask(ds.items[0], FPS, 1))
    other = evaluate_folder(root, take2_folder, tmp_path / "c", mask_cache=tmp_path / "c1")
    assert other.files["csv"].read_bytes() != computed.files["csv"].read_bytes()
