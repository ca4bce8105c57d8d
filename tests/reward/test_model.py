from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pipeline.reward.tiny import make_tiny_vjepa2
from pipeline.reward.model import RewardModelError, clear_model_cache, load_vjepa2
from pipeline.reward.surprise import SurpriseScorer

from .conftest import random_clip


def test_loaded_model_is_frozen_eval_and_cached(tiny_dir: Path, tiny_model: torch.nn.Module) -> None:
    assert not tiny_model.training
    assert not any(p.requires_grad for p in tiny_model.parameters())
    first = load_vjepa2(tiny_dir)
    assert load_vjepa2(tiny_dir) is first
    assert load_vjepa2(str(tiny_dir) + "/") is first  # same folder, other spelling
    other = load_vjepa2(tiny_dir, dtype=torch.float64)
    assert other is not first and next(other.parameters()).dtype == torch.float64


def test_tiny_model_is_deterministic(tmp_path: Path, tiny_dir: Path) -> None:
    again = make_tiny_vjepa2(tmp_path / "again", seed=0)
    a, b = load_file(tiny_dir / "model.safetensors"), load_file(again / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    c = load_file(make_tiny_vjepa2(tmp_path / "seed1", seed=1) / "model.safetensors")
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_save_load_round_trip_gives_identical_scores(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    tiny_model.save_pretrained(str(tmp_path / "copy"))
    reloaded = load_vjepa2(tmp_path / "copy")
    assert reloaded is not tiny_model
    clip = random_clip(20)
    a = SurpriseScorer(tiny_model).score_frames(clip)
    b = SurpriseScorer(reloaded).score_frames(clip)
    assert a.window_surprises == b.window_surprises and a.surprise == b.surprise


def test_scorer_accepts_a_path(tiny_dir: Path) -> None:
    scorer = SurpriseScorer(tiny_dir)
    assert scorer.settings["model_path"] == str(tiny_dir.resolve())


def test_missing_folder_message(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_model"
    with pytest.raises(RewardModelError) as err:
        load_vjepa2(missing)
    msg = str(err.value)
    assert str(missing) in msg and "config.json" in msg and "model.safetensors" in msg
    assert "not found" in msg


def test_incomplete_folder_message(tmp_path: Path, tiny_dir: Path) -> None:
    (tmp_path / "config.json").write_text((tiny_dir / "config.json").read_text())
    with pytest.raises(RewardModelError, match=r"incomplete: missing model\.safetensors"):
        load_vjepa2(tmp_path)
    (tmp_path / "config.json").unlink()
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(RewardModelError, match="missing config.json"):
        load_vjepa2(tmp_path)


def test_wrong_model_type(tmp_path: Path, tiny_dir: Path) -> None:
    cfg = json.loads((tiny_dir / "config.json").read_text())
    cfg["model_type"] = "vit"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "model.safetensors").write_bytes((tiny_dir / "model.safetensors").read_bytes())
    with pytest.raises(RewardModelError, match="expected 'vjepa2'"):
        load_vjepa2(tmp_path)


def test_loading_never_touches_the_network(tmp_path: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    clear_model_cache()
    model = load_vjepa2(tiny_dir)
    assert model is not None
    with pytest.raises(RewardModelError):
        load_vjepa2(tmp_path / "facebook" / "vjepa2-vitg-fpc64-256")  # looks like a repo id


def test_tiny_model_is_not_rebuilt_when_complete(tmp_path: Path) -> None:
    first = make_tiny_vjepa2(tmp_path / "m", seed=0)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert make_tiny_vjepa2(tmp_path / "m", seed=0) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    make_tiny_vjepa2(tmp_path / "m", seed=1)  # other parameters: rebuilt in place
    assert (first / "model.safetensors").stat().st_mtime_ns != stamp
