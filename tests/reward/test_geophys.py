"""The GeoPhys-style verifier and the ensemble: rank fusion, the transformers encoder on a tiny
random DINOv2, the fused surprise in batch and as videos grow, and the score-videos command."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.rewards.base import ScoreFailure
from pipeline.rewards.ensemble.reward import Ensemble
from pipeline.rewards.ensemble.spec import EnsembleConfig, member_configs
from pipeline.rewards.fusion import rank_fuse, scaled_ranks
from pipeline.rewards.geophys.reward import GeoPhys
from pipeline.rewards.geophys.spec import GeoPhysConfig
from pipeline.rewards.geophys.trajectory import STATISTICS, trajectory_statistics
from pipeline.tiny_models.dinov2 import make_tiny_dinov2
from pipeline.video_io import write_video

from .conftest import random_clip


@pytest.fixture(scope="module")
def dino(tmp_path_factory) -> Path:
    return make_tiny_dinov2(tmp_path_factory.mktemp("dinov2"))


@pytest.fixture(scope="module")
def scorer(dino):
    return GeoPhys.from_config(GeoPhysConfig(checkpoint=str(dino), image_size=32, batch_frames=5))


def clips(n: int, t: int = 12) -> list[np.ndarray]:
    return [random_clip(t, 40, 56, seed=s) for s in range(n)]


def test_scaled_ranks_ties_share_and_non_finite_rank_last():
    assert scaled_ranks([3.0, 1.0, 2.0]) == [1.0, 0.0, 0.5]
    assert scaled_ranks([1.0, 1.0, 5.0]) == [0.25, 0.25, 1.0]
    assert scaled_ranks([math.nan, 0.0, math.inf]) == [0.75, 0.0, 0.75]
    assert scaled_ranks([7.0]) == [0.0]
    # two columns that disagree cancel; a third decides
    assert rank_fuse([[1, 2], [2, 1]]) == [0.5, 0.5]
    assert rank_fuse([[1, 2], [2, 1], [1, 2]]) == pytest.approx([1 / 3, 2 / 3])
    with pytest.raises(ValueError, match="one value per candidate"):
        rank_fuse([[1, 2], [1]])


def test_embeddings_are_the_transformers_encoders_own(dino, scorer):
    """The class token of the encoder's final output, from AutoModel on the folder as saved."""
    from transformers import AutoModel

    from pipeline.rewards.vjepa2.preprocess import preprocess_clip

    frames = clips(1)[0]
    model = AutoModel.from_pretrained(dino).eval()
    with torch.no_grad():
        expected = model(pixel_values=preprocess_clip(frames, 32)).last_hidden_state[:, 0]
    got = scorer.embeddings(frames)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    stats = scorer.score_frames(frames).statistics
    reference = {k: float(v) for k, v in trajectory_statistics(expected).items()}
    assert stats == pytest.approx(reference, rel=1e-6)


@pytest.mark.parametrize("layer, pooling", [(1, "cls"), (-1, "mean"), (0, "mean")])
def test_layer_and_pooling_choose_the_vector(dino, layer, pooling):
    from transformers import AutoModel

    from pipeline.rewards.vjepa2.preprocess import preprocess_clip

    frames = clips(1)[0]
    sc = GeoPhys.from_config(GeoPhysConfig(checkpoint=str(dino), image_size=32, layer=layer, pooling=pooling))
    with torch.no_grad():
        hidden = (
            AutoModel.from_pretrained(dino)
            .eval()(pixel_values=preprocess_clip(frames, 32), output_hidden_states=True)
            .hidden_states[layer]
        )
    expected = hidden[:, 0] if pooling == "cls" else hidden[:, 1:].mean(dim=1)
    torch.testing.assert_close(sc.embeddings(frames), expected, rtol=0, atol=1e-6)


def test_bad_encoder_settings_and_folders_are_named(dino, tmp_path):
    with pytest.raises(ConfigError, match="reward.layer=7"):
        GeoPhys.from_config(GeoPhysConfig(checkpoint=str(dino), image_size=32, layer=7))
    with pytest.raises(ConfigError, match="reward.image_size=30"):
        GeoPhys.from_config(GeoPhysConfig(checkpoint=str(dino), image_size=30))
    with pytest.raises(ConfigError, match="huggingface-cli download"):
        GeoPhys.check(GeoPhysConfig(checkpoint=str(tmp_path / "absent")))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text('{"model_type": "dinov2"}')
    with pytest.raises(ConfigError, match="no weights"):
        GeoPhys.check(GeoPhysConfig(checkpoint=str(tmp_path / "empty")))
    assert GeoPhys.settings_problems(GeoPhysConfig(), frames=3)


def test_fused_surprises_in_batch_as_records_and_as_videos_grow(scorer):
    videos = clips(4)
    batch = torch.from_numpy(np.stack(videos))
    fused = scorer.surprises(batch)
    records = [r.record() for r in scorer.score_many(videos)]
    assert fused.tolist() == pytest.approx(scorer.fuse(records))
    assert sorted(fused.tolist()) != [fused[0].item()] * 4  # the candidates are told apart
    grow = scorer.so_far(4)
    assert torch.isnan(grow.extend(batch[:, :3])).all()  # too short for a turn spread
    grow.extend(batch[:, 3:7])
    assert grow.extend(batch[:, 7:]).tolist() == pytest.approx(fused.tolist())
    # rows kept and duplicated carry their embeddings
    grow.select_rows([2, 2, 0, 1])
    assert grow.extend(batch[:, :0]).tolist() == pytest.approx(scorer.surprises(batch[[2, 2, 0, 1]]).tolist())


def test_short_and_unreadable_clips_are_recorded(scorer, tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"no video")
    out = scorer.score_many([clips(1, t=3)[0], str(tmp_path / "bad.mp4"), clips(1)[0]], on_error="record")
    assert isinstance(out[0], ScoreFailure) and "at least 4" in out[0].error
    assert isinstance(out[1], ScoreFailure) and not isinstance(out[2], ScoreFailure)
    with pytest.raises(ValueError):
        scorer.score_many([clips(1, t=3)[0]])


def test_ensemble_fuses_members_by_rank(dino, tiny_dir):
    cfg = EnsembleConfig(
        members=[
            {"name": "vjepa2_surprise", "variant": "tiny", "checkpoint": str(tiny_dir), "stride": 4},
            {"name": "geophys", "checkpoint": str(dino), "image_size": 32},
        ]
    )
    ens = Ensemble.from_config(cfg)
    videos = [random_clip(20, 64, 64, seed=s) for s in range(3)]
    records = [r.record() for r in ens.score_many(videos)]
    vjepa, geo = ens.scorers
    expected = rank_fuse([[r["members"][0]["surprise"] for r in records], geo.fuse([r["members"][1] for r in records])])
    assert ens.fuse(records) == pytest.approx(expected)
    assert [m["surprise"] for m in (r["members"][0] for r in records)] == pytest.approx(
        [vjepa.score_frames(v).surprise for v in videos]
    )
    assert ens.surprises(torch.from_numpy(np.stack(videos))).tolist() == pytest.approx(expected)
    assert ens.forwards == vjepa.forwards + geo.forwards > 0


@pytest.mark.parametrize(
    "members, message",
    [
        ([{"name": "geophys", "pooling": "max"}, {"name": "geophys"}], r"reward.members\[0\].pooling='max'"),
        ([{"name": "geophys", "poolin": "cls"}, {"name": "geophys"}], r"reward.members\[0\]: .*poolin"),
        ([{"name": "ensemble"}, {"name": "geophys"}], "cannot be an ensemble"),
        ([{"checkpoint": "x"}, {"name": "geophys"}], "with a name"),
    ],
)
def test_ensemble_members_are_checked_by_their_own_schemas(members, message):
    with pytest.raises(ConfigError, match=message):
        member_configs(EnsembleConfig(members=members))


def test_score_videos_ranks_the_videos_given(dino, tmp_path):
    from pipeline.cli.score_videos import main

    for s in range(3):
        write_video(tmp_path / f"v{s}.mp4", random_clip(12, 40, 56, seed=s), fps=8)
    out = tmp_path / "scores.csv"
    rc = main(
        [f"videos={tmp_path}", "reward=geophys_tiny", f"reward.checkpoint={dino}", f"output={out}", "reward.device=cpu"]
    )
    assert rc == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    stats = [json.loads(r["statistics"]) for r in rows]
    expected = rank_fuse([[s[k] for s in stats] for k in STATISTICS])
    assert [float(r["surprise"]) for r in rows] == pytest.approx(expected)
    assert len(set(expected)) > 1


def test_an_ensembles_run_key_sees_its_members_as_their_schemas_do():
    from pipeline.fields import result_fields

    def key(**vjepa):
        members = [{"name": "vjepa2_surprise", **vjepa}, {"name": "geophys"}]
        return result_fields(EnsembleConfig(members=members))

    assert key(batch_windows=2) == key(batch_windows=16) == key()  # operational: how, not what
    assert key(window_size=8, context_frames=4) != key()
    assert key()["members"][1]["__type__"] == "GeoPhysConfig"


def test_another_backbone_loads_the_same_way(tmp_path):
    """A DINOv3 folder (class token, register tokens, then patches) through the same AutoModel
    path: mean pooling averages the patch tokens only."""
    from transformers import AutoModel, DINOv3ViTConfig, DINOv3ViTModel

    from pipeline.rewards.vjepa2.preprocess import preprocess_clip

    torch.manual_seed(0)
    config = DINOv3ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=8,
        num_register_tokens=2, image_size=32,
    )  # fmt: skip
    DINOv3ViTModel(config).save_pretrained(tmp_path / "dinov3")
    sc = GeoPhys.from_config(GeoPhysConfig(checkpoint=str(tmp_path / "dinov3"), image_size=32, pooling="mean"))
    assert sc.encoder.prefix_tokens == 3 and sc.settings["encoder_type"] == "dinov3_vit"
    frames = clips(1)[0]
    with torch.no_grad():
        tokens = (
            AutoModel.from_pretrained(tmp_path / "dinov3")
            .eval()(pixel_values=preprocess_clip(frames, 32))
            .last_hidden_state
        )
    assert tokens.shape[1] == 3 + 16
    torch.testing.assert_close(sc.embeddings(frames), tokens[:, 3:].mean(dim=1), rtol=0, atol=1e-6)


def test_the_issue_names_select_the_default_presets():
    """``reward=geophys`` and ``reward=ensemble``, as users' scripts spell them, pick DINOv2
    ViT-L/14 and GeoPhys + V-JEPA 2 ViT-g."""
    from pipeline.config import to_config
    from tests.conftest import compose

    geo = to_config(compose(["reward=geophys"])).reward
    assert (geo.name, geo.checkpoint, geo.image_size) == ("geophys", "checkpoints/dinov2-large", 224)
    ens = to_config(compose(["reward=ensemble"])).reward
    assert [m["name"] for m in ens.members] == ["geophys", "vjepa2_surprise"]
