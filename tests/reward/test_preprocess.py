from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.rewards.vjepa2.preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess_clip

from .conftest import random_clip


def test_shape_and_input_types_agree() -> None:
    fr = random_clip(5, 48, 80)  # non-square: squashed, not cropped
    a = preprocess_clip(fr, 64)
    assert a.shape == (5, 3, 64, 64) and a.dtype == torch.float32
    b = preprocess_clip(torch.from_numpy(fr), 64)
    c = preprocess_clip(torch.from_numpy(fr).float(), 64)
    d = preprocess_clip(torch.from_numpy(fr).float().permute(0, 3, 1, 2), 64)
    for other in (b, c, d):
        assert torch.equal(a, other)


def test_batched_equals_unbatched() -> None:
    fr = np.stack([random_clip(4, 40, 40, seed=s) for s in range(2)])
    out = preprocess_clip(fr, 32)
    assert out.shape == (2, 4, 3, 32, 32)
    assert torch.equal(out[1], preprocess_clip(fr[1], 32))


def test_values_constant_frame() -> None:
    fr = np.full((2, 30, 50, 3), 128, np.uint8)
    out = preprocess_clip(fr, 16)
    for ch in range(3):
        expect = (128 / 255 - IMAGENET_MEAN[ch]) / IMAGENET_STD[ch]
        assert torch.allclose(out[:, ch], torch.full_like(out[:, ch], expect), atol=1e-5)


def test_resize_is_antialiased_bilinear_and_same_size_is_identity() -> None:
    fr = torch.from_numpy(random_clip(3, 128, 96)).float()
    out = preprocess_clip(fr, 64)
    ref = F.interpolate(fr.permute(0, 3, 1, 2), size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(out, (ref / 255 - mean) / std, atol=1e-6)
    # The same-size shortcut must agree with what interpolate would have done.
    sq = torch.from_numpy(random_clip(2, 64, 64)).float().permute(0, 3, 1, 2)
    same = F.interpolate(sq, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    assert torch.allclose(same, sq, atol=1e-4)


def test_differentiable() -> None:
    x = torch.from_numpy(random_clip(2, 40, 56)).float().requires_grad_(True)
    preprocess_clip(x, 32).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_rejects_ambiguous_inputs() -> None:
    with pytest.raises(TypeError):
        preprocess_clip(np.zeros((2, 8, 8, 3), np.float32), 8)
    with pytest.raises(ValueError):
        preprocess_clip(torch.zeros(2, 8, 8, 4), 8)
    with pytest.raises(ValueError):
        preprocess_clip(torch.zeros(8, 8, 3), 8)
