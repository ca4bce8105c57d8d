from __future__ import annotations

import json
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from pipeline import model_cache
from pipeline.rewards.vjepa2.checkpoints import ENV_DIR, RewardModelError
from pipeline.rewards.vjepa2.model import check_reward_config, load_world_model
from pipeline.rewards.vjepa2.surprise import SurpriseScorer
from pipeline.rewards.vjepa2.variants import ArchError, arch_from_dict
from pipeline.tiny_models.vjepa2 import TINY_FILE, make_tiny_vjepa2, official_checkpoint, random_model

from .conftest import random_clip

# A small official-format architecture in the upstream constructors' argument names, with the
# SwiGLU MLP and head widths that leave unrotated RoPE channels.
ARCH = {
    "encoder": {
        "img_size": [32, 32],
        "patch_size": 16,
        "num_frames": 16,
        "tubelet_size": 2,
        "embed_dim": 40,
        "depth": 1,
        "num_heads": 2,
        "mlp_ratio": 48 / 11,
        "qkv_bias": True,
        "use_rope": True,
        "use_sdpa": True,
        "use_silu": True,
        "wide_silu": True,
        "uniform_power": False,
        "drop_path_rate": 0.0,
    },
    "predictor": {
        "predictor_embed_dim": 24,
        "depth": 2,
        "num_heads": 2,
        "use_mask_tokens": True,
        "num_mask_tokens": 3,
        "use_rope": True,
        "use_silu": False,
        "zero_init_mask_tokens": True,
    },
}


def test_loaded_model_is_frozen_eval_and_cached(tiny_dir: Path, tiny_model) -> None:
    assert not tiny_model.training
    assert not any(p.requires_grad for p in tiny_model.parameters())
    assert load_world_model("tiny", tiny_dir) is tiny_model
    assert load_world_model("tiny", str(tiny_dir) + "/") is tiny_model  # same folder, other spelling
    assert load_world_model("tiny", tiny_dir / TINY_FILE) is tiny_model  # the file itself
    other = load_world_model("tiny", tiny_dir, dtype=torch.float64)
    assert other is not tiny_model and next(other.parameters()).dtype == torch.float64


def test_tiny_model_is_deterministic_and_not_rebuilt(tmp_path: Path, tiny_dir: Path) -> None:
    again = make_tiny_vjepa2(tmp_path / "again", seed=0)
    a, b = (torch.load(d / TINY_FILE, weights_only=True) for d in (tiny_dir, again))
    assert all(torch.equal(a["predictor"][k], b["predictor"][k]) for k in a["predictor"])
    stamp = (again / TINY_FILE).stat().st_mtime_ns
    assert make_tiny_vjepa2(tmp_path / "again", seed=0) == again
    assert (again / TINY_FILE).stat().st_mtime_ns == stamp
    c = torch.load(make_tiny_vjepa2(tmp_path / "again", seed=1) / TINY_FILE, weights_only=True)
    assert not torch.equal(
        a["predictor"]["module.predictor_embed.weight"], c["predictor"]["module.predictor_embed.weight"]
    )


def test_weights_key_picks_the_encoder(tiny_dir: Path, tiny_model) -> None:
    online = load_world_model("tiny", tiny_dir, weights="encoder")
    assert not torch.equal(online.encoder.norm.weight, tiny_model.encoder.norm.weight)
    assert torch.equal(online.predictor.predictor_proj.weight, tiny_model.predictor.predictor_proj.weight)
    clip = random_clip(16)
    assert SurpriseScorer(online).score_frames(clip).surprise != SurpriseScorer(tiny_model).score_frames(clip).surprise
    assert SurpriseScorer(online).settings["weights"] == "encoder"


@pytest.mark.parametrize("prefix", ["module.", "module.backbone.", ""])
def test_official_format_round_trip(tmp_path: Path, prefix: str) -> None:
    """A checkpoint written with the official key names loads and scores like the in-memory model."""
    arch = arch_from_dict(ARCH)
    model = random_model(arch, seed=3)
    torch.save(official_checkpoint(model, prefix=prefix), tmp_path / "m.pt")
    (tmp_path / "arch.json").write_text(json.dumps(ARCH))
    loaded = load_world_model("custom", tmp_path / "m.pt", arch=tmp_path / "arch.json")
    assert loaded.arch == arch and loaded.encoder.blocks[0].mlp.fc3.out_features == 40
    clip = random_clip(18, 40, 48)
    a, b = SurpriseScorer(model).score_frames(clip), SurpriseScorer(loaded).score_frames(clip)
    assert a.window_surprises == b.window_surprises


def _write(tmp_path: Path, edit) -> Path:
    model = random_model(arch_from_dict(ARCH), seed=3)
    ck = official_checkpoint(model)
    edit(ck)
    torch.save(ck, tmp_path / "m.pt")
    (tmp_path / "arch.json").write_text(json.dumps(ARCH))
    return tmp_path / "m.pt"


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda ck: ck["target_encoder"].pop("module.norm.bias"), r"missing 1 key\(s\) \['norm.bias'\]"),
        (lambda ck: ck["predictor"].update({"module.extra": torch.zeros(1)}), r"unexpected 1 key\(s\) \['extra'\]"),
        (lambda ck: ck["predictor"].update({"module.pos_embed2": torch.zeros(1)}), r"predictor weights.*'pos_embed2'"),
        (lambda ck: ck["target_encoder"].update({"module.norm.weight": torch.zeros(7)}), "shape mismatch"),
        (lambda ck: ck.pop("predictor"), "no 'predictor' state dict"),
    ],
)
def test_strict_loading(tmp_path: Path, edit, match: str) -> None:
    path = _write(tmp_path, edit)
    with pytest.raises(RewardModelError, match=match):
        load_world_model("custom", path, arch=tmp_path / "arch.json")


def test_wrong_variant_fails_clearly(tiny_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "vitl.pt").write_bytes((tiny_dir / TINY_FILE).read_bytes())
    with pytest.raises(RewardModelError, match="do not fit the architecture.*wrong reward.variant"):
        load_world_model("vitl", tmp_path)


def test_checkpoint_dir_from_env(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch, tiny_model) -> None:
    monkeypatch.setenv(ENV_DIR, str(tiny_dir))
    assert load_world_model("tiny", None) is tiny_model


def test_nothing_found_lists_what_was_looked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "env"))
    with pytest.raises(RewardModelError) as err:
        load_world_model("vitg", tmp_path)
    msg = str(err.value)
    assert f"{tmp_path}/vitg.pt" in msg and f"{tmp_path}/env/vitg.pt" in msg and "nothing is downloaded" in msg
    monkeypatch.delenv(ENV_DIR)
    with pytest.raises(RewardModelError, match=r"reward.checkpoint \(not set\).*\$VJEPA_CHECKPOINT_DIR \(not set\)"):
        load_world_model("vitg384", None)


def test_hf_folder_messages(tmp_path: Path, tiny_dir: Path) -> None:
    with pytest.raises(RewardModelError, match="not found.*config.json.*model.safetensors"):
        load_world_model("hf", tmp_path / "no_such_model")
    (tmp_path / "config.json").write_text((tiny_dir / "config.json").read_text())
    with pytest.raises(RewardModelError, match=r"incomplete: missing model\.safetensors"):
        load_world_model("hf", tmp_path)
    cfg = json.loads((tiny_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "model_type": "vit"}))
    (tmp_path / "model.safetensors").write_bytes((tiny_dir / "model.safetensors").read_bytes())
    with pytest.raises(RewardModelError, match="expected 'vjepa2'"):
        load_world_model("hf", tmp_path)


def test_loading_never_touches_the_network(tmp_path: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    model_cache.clear()
    assert load_world_model("hf", tiny_dir) is not None and load_world_model("tiny", tiny_dir) is not None
    with pytest.raises(RewardModelError):
        load_world_model("hf", tmp_path / "facebook" / "vjepa2-vitg-fpc64-256")  # looks like a repo id


def test_arch_json_errors() -> None:
    with pytest.raises(ArchError, match="unknown key 'embed_dimm'"):
        arch_from_dict({"encoder": {**ARCH["encoder"], "embed_dimm": 1}, "predictor": {}})
    with pytest.raises(ArchError, match="use_rope=false"):
        arch_from_dict({"encoder": {**ARCH["encoder"], "use_rope": False}, "predictor": {}})
    with pytest.raises(ArchError, match="qk_scale"):
        arch_from_dict({"encoder": ARCH["encoder"], "predictor": {"qk_scale": 0.1}})
    with pytest.raises(ArchError, match="exactly an 'encoder' and a 'predictor'"):
        arch_from_dict({"encoder": ARCH["encoder"]})


def test_check_reward_config(tiny_dir: Path, tmp_path: Path) -> None:
    base = dict(
        variant="tiny",
        checkpoint=str(tiny_dir),
        arch=None,
        weights="target_encoder",
        window_size=16,
        context_frames=8,
        dtype="float32",
    )
    check_reward_config(SimpleNamespace(**base))
    check_reward_config(SimpleNamespace(**{**base, "variant": "hf"}))
    for change, match in [
        ({"variant": "vitx"}, "reward.variant"),
        ({"weights": "ema"}, "reward.weights"),
        ({"arch": "a.json"}, "reward.arch"),
        ({"dtype": "fp8"}, "reward.dtype"),
        ({"context_frames": 7}, "multiple of the tubelet"),
    ]:
        with pytest.raises(ValueError, match=match):
            check_reward_config(SimpleNamespace(**{**base, **change}))
    with pytest.raises(RewardModelError, match="looked for"):
        check_reward_config(SimpleNamespace(**{**base, "checkpoint": str(tmp_path)}))
