"""The reward as search uses it: a batch of device tensors scored at once, and the surprise of
videos that grow chunk by chunk, computing only the windows the new frames complete."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.rewards.vjepa2.surprise import SurpriseScorer

from .conftest import random_clip


def test_a_batch_of_tensors_scores_like_each_video_alone(tiny_model) -> None:
    scorer = SurpriseScorer(tiny_model, stride=4)
    clips = [random_clip(30, 48, 64, seed=s) for s in range(3)]
    batch = torch.from_numpy(np.stack(clips))
    got = scorer.surprises(batch)
    assert got.shape == (3,)
    for value, clip in zip(got.tolist(), clips):
        assert value == pytest.approx(scorer.score_frames(clip).surprise, abs=1e-6)
    # float frames on the 0..255 scale, channels first: the same numbers
    floats = batch.float().permute(0, 1, 4, 2, 3)
    assert torch.allclose(scorer.surprises(floats), got, atol=1e-6)
    # a NaN frame makes that video NaN and leaves the others alone
    bad = batch.float().clone()
    bad[1, 5] = float("nan")
    mixed = scorer.surprises(bad)
    assert math.isnan(mixed[1]) and torch.allclose(mixed[[0, 2]], got[[0, 2]], atol=1e-6)


@pytest.mark.parametrize("stride, chunks", [(2, [24, 24, 24]), (4, [5, 11, 24, 3]), (3, [40])])
def test_the_video_so_far_equals_scoring_its_frames(tiny_model, stride, chunks) -> None:
    scorer = SurpriseScorer(tiny_model, stride=stride)
    videos = np.stack([random_clip(sum(chunks), 48, 64, seed=s) for s in (1, 2)])
    so_far = scorer.so_far(rows=2)
    seen, windows, forwards = 0, 0, 0
    for size in chunks:
        value = so_far.extend(torch.from_numpy(videos[:, seen : seen + size]))
        seen += size
        if seen < scorer.window_size:
            assert torch.isnan(value).all()
            continue
        forwards = scorer.forwards  # before the reference scoring below adds its own
        for row in (0, 1):
            assert value[row].item() == pytest.approx(scorer.score_frames(videos[row, :seen]).surprise, abs=1e-6)
        windows = len(range(0, seen - scorer.window_size + 1, stride))
        scorer.forwards = forwards
    # every window was computed once per video, never again for a later chunk
    assert scorer.forwards == 2 * windows


def test_rows_re_index_with_the_candidates(tiny_model) -> None:
    scorer = SurpriseScorer(tiny_model, stride=4)
    videos = np.stack([random_clip(48, 48, 64, seed=s) for s in (3, 4)])
    so_far = scorer.so_far(rows=2)
    so_far.extend(torch.from_numpy(videos[:, :24]))
    so_far.select_rows([1, 1, 0])  # the second candidate kept twice, the first once
    continued = videos[[1, 1, 0]]
    value = so_far.extend(torch.from_numpy(continued[:, 24:]))
    for row in range(3):
        assert value[row].item() == pytest.approx(scorer.score_frames(continued[row]).surprise, abs=1e-6)
    with pytest.raises(ValueError, match="2 videos given, 3 in flight"):
        so_far.extend(torch.from_numpy(videos[:, :4]))


def test_subsampling_cannot_score_a_growing_video(tiny_model) -> None:
    with pytest.raises(ValueError, match="reward.max_frames=null"):
        SurpriseScorer(tiny_model, max_frames=32).so_far(rows=1)
