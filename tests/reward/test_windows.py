from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.rewards.vjepa2.windows import subsample_indices, token_split, window_starts


@pytest.mark.parametrize("t", [16, 17, 49])
@pytest.mark.parametrize("stride", [2, 4, 8])
def test_window_starts_formula(t: int, stride: int) -> None:
    starts = window_starts(t, 16, stride)
    assert len(starts) == (t - 16) // stride + 1
    assert starts == list(range(0, len(starts) * stride, stride))
    assert starts[-1] + 16 <= t  # only full windows
    assert starts[-1] + stride + 16 > t  # and no full window was dropped


@pytest.mark.parametrize(
    "t, stride, expected",
    [
        (16, 2, [0]),
        (16, 8, [0]),
        (17, 2, [0]),
        (17, 4, [0]),
        (49, 8, [0, 8, 16, 24, 32]),
        (49, 4, [0, 4, 8, 12, 16, 20, 24, 28, 32]),
        (49, 2, list(range(0, 34, 2))),
    ],
)
def test_window_starts_examples(t: int, stride: int, expected: list[int]) -> None:
    assert window_starts(t, 16, stride) == expected
    if t == 49 and stride == 2:
        assert len(expected) == 17


def test_window_starts_errors() -> None:
    with pytest.raises(ValueError, match="fewer than one window of 16"):
        window_starts(15, 16, 2)
    with pytest.raises(ValueError):
        window_starts(20, 16, 0)


@pytest.mark.parametrize("grid, n", [(4, 64), (16, 1024), (24, 2304)])
def test_token_split_causal(grid: int, n: int) -> None:
    ctx, tgt = token_split(16, 8, 2, grid)
    assert ctx.dtype == tgt.dtype == torch.long
    assert torch.equal(ctx, torch.arange(n)) and torch.equal(tgt, torch.arange(n, 2 * n))


def test_token_split_other_context() -> None:
    ctx, tgt = token_split(16, 4, 2, 4)
    assert len(ctx) == 2 * 16 and len(tgt) == 6 * 16 and tgt[0] == ctx[-1] + 1


@pytest.mark.parametrize(
    "ctx_frames, msg",
    [
        (7, "multiple of the tubelet"),
        (0, "multiple of the tubelet"),
        (16, "leaves no target"),
        (18, "leaves no target"),
    ],
)
def test_token_split_errors(ctx_frames: int, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        token_split(16, ctx_frames, 2, 4)
    with pytest.raises(ValueError, match="window_size 15"):
        token_split(15, 8, 2, 4)


def test_token_index_matches_model_layout(tiny_model: torch.nn.Module) -> None:
    """token index = t'·g² + h·g + w, checked on the model's own patch embedding."""
    g, tub, p = 4, 2, 16
    x = torch.zeros(1, 3, 16, 64, 64)  # (B, C, T, H, W), as the official encoder takes it
    base = tiny_model.encoder.patch_embed(x)
    t_slot, row, col = 5, 1, 3
    x[0, :, t_slot * tub, row * p, col * p] = 1.0
    changed = (tiny_model.encoder.patch_embed(x) - base).abs().sum(-1)[0].nonzero().flatten().tolist()
    assert changed == [t_slot * g * g + row * g + col]
    _, tgt = token_split(16, 8, tub, g)
    assert changed[0] in tgt.tolist()  # frame 10 lies in the target half


@pytest.mark.parametrize("n, k", [(41, 20), (96, 49), (49, 49), (30, 49), (100, 16), (1, 5)])
def test_subsample_indices_linspace(n: int, k: int) -> None:
    got = subsample_indices(n, k)
    assert np.array_equal(got, np.linspace(0, n - 1, min(n, k)).astype(int))
    assert len(got) == min(n, k)


def test_subsample_indices_none_and_errors() -> None:
    assert np.array_equal(subsample_indices(7, None), np.arange(7))
    with pytest.raises(ValueError):
        subsample_indices(0, 5)
    with pytest.raises(ValueError):
        subsample_indices(10, 0)
