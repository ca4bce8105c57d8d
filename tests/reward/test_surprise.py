from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.rewards.vjepa2.surprise import NonFiniteSurpriseError, SurpriseScorer
from pipeline.video_io import read_video, write_video

from .conftest import random_clip

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def reference_surprise(
    model, frames: np.ndarray, window: int, ctx_frames: int, stride: int, aggregate: str = "mean"
) -> tuple[float, list[float]]:
    """Straightforward per-window WMReward loop, independent of the scorer: one window at a time,
    context given to the encoder as an official token mask (not as a frame prefix)."""
    s = model.img_size
    g2 = (s // model.patch_size) ** 2
    n_ctx = ctx_frames // 2 * g2
    n_all = window // 2 * g2
    x = torch.from_numpy(frames).float().permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
    x = (x / 255 - MEAN) / STD
    losses = []
    with torch.no_grad():
        for start in range(0, len(x) - window + 1, stride):
            w = x[start : start + window].permute(1, 0, 2, 3).unsqueeze(0)  # (1, C, T, H, W)
            h = model.encoder(w)
            h = F.layer_norm(h, (h.shape[-1],))[:, n_ctx:]
            ctx_ids, tgt_ids = torch.arange(n_ctx), torch.arange(n_ctx, n_all)
            z = model.encoder(w, keep=ctx_ids[None])
            z = model.predictor(z, ctx_ids[None], tgt_ids[None], mask_index=1)
            z = F.layer_norm(z, (z.shape[-1],))
            losses.append(1 - F.cosine_similarity(z, h, dim=-1).mean().item())
    return (float(np.mean(losses)) if aggregate == "mean" else max(losses)), losses


@pytest.mark.parametrize("t, h, w, stride, batch", [(23, 64, 64, 2, 3), (41, 48, 80, 4, 8), (49, 64, 64, 8, 2)])
def test_batched_equals_per_window_reference(tiny_model, t, h, w, stride, batch) -> None:
    clip = random_clip(t, h, w, seed=t)
    res = SurpriseScorer(tiny_model, stride=stride, batch_windows=batch).score_frames(clip)
    ref, ref_windows = reference_surprise(tiny_model, clip, 16, 8, stride)
    assert len(res.window_surprises) == len(ref_windows) == (t - 16) // stride + 1
    np.testing.assert_allclose(res.window_surprises, ref_windows, atol=1e-5, rtol=0)
    assert res.surprise == pytest.approx(ref, abs=1e-5)
    assert res.num_frames_used == t
    assert res.window_starts == list(range(0, len(ref_windows) * stride, stride))
    assert 0.0 <= res.surprise <= 2.0 and res.reward == pytest.approx(1 - res.surprise)


def test_batch_size_does_not_change_scores(tiny_model) -> None:
    clip = random_clip(30)
    a = SurpriseScorer(tiny_model, batch_windows=1).score_frames(clip).window_surprises
    b = SurpriseScorer(tiny_model, batch_windows=100).score_frames(clip).window_surprises
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_context_is_not_leaked_from_future_frames(tiny_model) -> None:
    scorer = SurpriseScorer(tiny_model)
    clip = random_clip(16)
    changed = clip.copy()
    changed[8:] = 255 - changed[8:]  # only the target half of the window differs
    wins = torch.stack([scorer_input(scorer, clip), scorer_input(scorer, changed)])
    pred = scorer.predict_targets(wins)
    assert torch.equal(pred[0], pred[1])
    tgt = scorer.encode_targets(wins)
    assert (tgt[0] - tgt[1]).abs().max() > 1e-3
    a, b = scorer.score_frames(clip).surprise, scorer.score_frames(changed).surprise
    assert a != b
    # Changing the context frames does change the prediction.
    ctx_changed = clip.copy()
    ctx_changed[:8] = 255 - ctx_changed[:8]
    assert not torch.equal(scorer.predict_targets(scorer_input(scorer, ctx_changed)[None])[0], pred[0])


def scorer_input(scorer: SurpriseScorer, frames: np.ndarray) -> torch.Tensor:
    from pipeline.rewards.vjepa2.preprocess import preprocess_clip

    return preprocess_clip(frames, scorer.crop_size)


@pytest.mark.parametrize("layout", ["THWC", "TCHW"])
def test_differentiable_matches_score_and_has_gradient(tiny_model, layout) -> None:
    scorer = SurpriseScorer(tiny_model, stride=4)
    clip = random_clip(25, 48, 64)
    expected = scorer.score_frames(clip).surprise
    x = torch.from_numpy(clip).float()
    if layout == "TCHW":
        x = x.permute(0, 3, 1, 2).contiguous()
    x.requires_grad_(True)
    with torch.no_grad():  # guidance code often runs inside an outer no_grad
        s = scorer.surprise_differentiable(x)
    assert s.ndim == 0 and s.requires_grad
    assert s.item() == pytest.approx(expected, abs=1e-5)
    s.backward()
    g = x.grad
    assert torch.isfinite(g).all()
    frame_axes = tuple(range(1, g.ndim))
    per_frame = g.abs().sum(frame_axes)
    assert (per_frame[:24] > 0).all()  # windows at 0, 4, 8 cover frames 0..23 ...
    assert per_frame[24] == 0  # ... the dropped trailing frame gets no gradient


def test_differentiable_checkpointed_same_value_and_grad(tiny_model) -> None:
    scorer = SurpriseScorer(tiny_model, stride=2, batch_windows=2)
    x1 = torch.from_numpy(random_clip(20)).float().requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    a = scorer.surprise_differentiable(x1)
    b = scorer.surprise_differentiable(x2, checkpoint_windows=True)
    a.backward()
    b.backward()
    assert a.item() == pytest.approx(b.item(), abs=1e-6)
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-9, rtol=1e-4)


def test_differentiable_respects_max_frames(tiny_model) -> None:
    scorer = SurpriseScorer(tiny_model, max_frames=20, aggregate="max")
    clip = random_clip(41)
    x = torch.from_numpy(clip).float().requires_grad_(True)
    assert scorer.surprise_differentiable(x).item() == pytest.approx(scorer.score_frames(clip).surprise, abs=1e-5)


def test_aggregate_max_vs_mean(tiny_model) -> None:
    clip = random_clip(33)
    mean_res = SurpriseScorer(tiny_model, aggregate="mean").score_frames(clip)
    max_res = SurpriseScorer(tiny_model, aggregate="max").score_frames(clip)
    assert mean_res.window_surprises == max_res.window_surprises
    assert mean_res.surprise == pytest.approx(float(np.mean(mean_res.window_surprises)), abs=1e-6)
    assert max_res.surprise == pytest.approx(max(max_res.window_surprises), abs=1e-6)
    assert max_res.surprise > mean_res.surprise
    assert (mean_res.settings["aggregate"], max_res.settings["aggregate"]) == ("mean", "max")


def test_max_frames_subsampling(tiny_model) -> None:
    clip = random_clip(41)
    res = SurpriseScorer(tiny_model, max_frames=20).score_frames(clip)
    idx = np.linspace(0, 40, 20).astype(int)
    direct = SurpriseScorer(tiny_model).score_frames(clip[idx])
    assert res.num_frames_used == 20
    assert res.window_surprises == direct.window_surprises
    # torch input follows the same indices
    assert SurpriseScorer(tiny_model, max_frames=20).score_frames(torch.from_numpy(clip)).surprise == pytest.approx(
        res.surprise, abs=1e-6
    )
    # a short clip is not subsampled
    assert SurpriseScorer(tiny_model, max_frames=49).score_frames(clip).num_frames_used == 41


def test_settings_are_traceable(tiny_model, tiny_dir) -> None:
    s = SurpriseScorer(tiny_model, window_size=16, context_frames=8, stride=4, max_frames=30)
    st = s.score_frames(random_clip(30)).settings
    assert {k: st[k] for k in ("window_size", "context_frames", "stride", "aggregate", "max_frames", "crop_size")} == {
        "window_size": 16,
        "context_frames": 8,
        "stride": 4,
        "aggregate": "mean",
        "max_frames": 30,
        "crop_size": 64,
    }
    assert st["model_path"] == str(Path(tiny_dir).resolve() / "tiny.pt")
    assert (st["variant"], st["weights"], st["mask_index"]) == ("tiny", "target_encoder", 1)


def test_nan_raises(tiny_model) -> None:
    scorer = SurpriseScorer(tiny_model)
    x = torch.from_numpy(random_clip(18)).float()
    x[17, 3, 3, 0] = float("nan")  # only in the second window
    with pytest.raises(NonFiniteSurpriseError, match=r"windows \[1\]"):
        scorer.score_frames(x)
    with pytest.raises(NonFiniteSurpriseError):
        scorer.surprise_differentiable(x.requires_grad_(True))


def test_argument_errors(tiny_model) -> None:
    with pytest.raises(ValueError, match="fewer than one window"):
        SurpriseScorer(tiny_model).score_frames(random_clip(15))
    with pytest.raises(ValueError, match="multiple of the tubelet"):
        SurpriseScorer(tiny_model, context_frames=7)
    with pytest.raises(ValueError, match="leaves no target"):
        SurpriseScorer(tiny_model, context_frames=16)
    with pytest.raises(ValueError, match="aggregate"):
        SurpriseScorer(tiny_model, aggregate="median")
    with pytest.raises(ValueError, match="max_frames"):
        SurpriseScorer(tiny_model, max_frames=8)


def test_score_video_and_many(tiny_model, tmp_path) -> None:
    path = write_video(tmp_path / "clip.mp4", random_clip(20), fps=8)
    scorer = SurpriseScorer(tiny_model, stride=2)
    res = scorer.score_video(path)
    frames, _ = read_video(path)
    assert res.surprise == scorer.score_frames(frames).surprise
    assert res.settings["video"] == str(path) and res.settings["video_num_frames"] == 20
    many = scorer.score_many([path, frames, str(path)])
    assert [r.surprise for r in many] == [res.surprise] * 3


def test_float_numpy_is_rejected(tiny_model) -> None:
    with pytest.raises(TypeError, match="uint8"):
        SurpriseScorer(tiny_model).score_frames(random_clip(16).astype(np.float32))


def test_windows_of_several_clips_batch_together(tiny_model) -> None:
    clips = [random_clip(20, seed=1), random_clip(25, 48, 80, seed=2), random_clip(16, seed=3)]
    scorer = SurpriseScorer(tiny_model, stride=4, batch_windows=3)  # batches span clip boundaries
    many = scorer.score_many(clips)
    for clip, res in zip(clips, many):
        alone = SurpriseScorer(tiny_model, stride=4, batch_windows=1).score_frames(clip)
        np.testing.assert_allclose(res.window_surprises, alone.window_surprises, atol=1e-6, rtol=0)
        assert res.num_frames_used == len(clip)


def test_score_many_records_bad_clips(tiny_model, tmp_path) -> None:
    from pipeline.rewards.vjepa2.surprise import ScoreFailure

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    good = random_clip(18)
    res = SurpriseScorer(tiny_model).score_many([good, str(bad), random_clip(10), good], on_error="record")
    assert isinstance(res[1], ScoreFailure) and "cannot decode" in res[1].error
    assert isinstance(res[2], ScoreFailure) and "fewer than one window" in res[2].error
    assert res[0].surprise == res[3].surprise == SurpriseScorer(tiny_model).score_frames(good).surprise
    with pytest.raises(ValueError, match="fewer than one window"):
        SurpriseScorer(tiny_model).score_many([good, random_clip(10)])
