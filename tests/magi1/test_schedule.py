"""The t schedule and the staggered chunk stages as pure functions."""

from __future__ import annotations

import pytest
import torch

from pipeline.generators.magi1 import schedule as S


@pytest.mark.parametrize("steps", [4, 8, 16, 32, 64])
def test_stage_boundaries(steps):
    b = S.stage_boundaries(steps)
    assert b == pytest.approx([0.0, 0.0217, 0.1, 0.3, 1.0], abs=1e-4)
    g = S.t_grid(steps)
    assert g[0] == 0 and torch.all(g[1:] > g[:-1])


def test_four_step_grid_fp32_values():
    g = S.t_grid(4)
    assert g.dtype == torch.float32
    assert g.tolist() == pytest.approx([0.0, 0.0217391, 0.1000000089, 0.3000000119, 1.0000001192], abs=2e-7)
    assert g[3].item() > 0.3  # "nearly clean" (t > 0.3) already at the stage-3 boundary


def test_stage_of_t():
    assert [S.stage_of_t(t) for t in (0.0, 0.0216, 0.0217, 0.05, 0.1, 0.2999, 0.3, 0.9, 1.0)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
        3,
    ]


def test_window_stages_and_step_counts():
    st = S.window_stages(4, 4)
    assert [s.chunk_start for s in st] == [0, 0, 0, 0, 1, 2, 3]
    assert [s.chunk_end for s in st] == [1, 2, 3, 4, 4, 4, 4]
    assert [s.num_chunks for s in st] == [1, 2, 3, 4, 3, 2, 1]
    assert S.total_forward_steps(4, 32, 4) == 56
    assert S.step_position(9, 32, 4) == (1, 1)
    # in window stage 3 at step i the chunks (oldest first) are at t indices 24+i, 16+i, 8+i, i
    assert S.chunk_step_indices(st[3], 32, 4, 2) == [26, 18, 10, 2]
    g = S.t_grid(32)
    t = S.chunk_timesteps(g, st[3], 32, 4, 0, clean_t=0.9999)
    assert t.tolist() == pytest.approx([0.9999, 0.3, 0.1, 0.0217391, 0.0], abs=1e-6)
    # i2v / t2v chunk counts
    assert S.num_chunks(96, "t2v") == 4 and S.num_chunks(96, "i2v") == 5


def test_kv_ranges_per_stage():
    tok = 10
    # slice_point 1 (one cached chunk), a clean chunk then chunks at stages 3, 2, 1 (steps 24, 16, 8 of 32)
    r = S.chunk_kv_ranges(1, [32, 24, 16, 8], 32, [5, 4, 3, 2], 1, tok)
    # clean chunk (slot 1) sees itself; stage-3 chunk (slot 2) sees 2; stage-2 (slot 3) 3; stage-1 (slot 4) 4
    assert r.tolist() == [[10, 20], [10, 30], [10, 40], [10, 50]]
    r = S.chunk_kv_ranges(4, [0], 32, [5, 4, 3, 2], 1, tok)  # stage-0 chunk sees 4 older chunks
    assert r.tolist() == [[0, 50]]
    r = S.chunk_kv_ranges(0, [0], 32, [5, 4, 3, 2], 1, tok, batch=3)  # uncond batch: own sequence each
    assert r.tolist() == [[0, 10], [10, 20], [20, 30]]


def test_cfg_scales_and_distill():
    rng, p, s = [0, 0.0217, 0.1, 0.3, 0.999], [1.5, 1.5, 1.5, 1.0, 1.0], [7.5, 7.5, 7.5, 0.0, 0.0]
    assert S.cfg_scales(0.0, rng, p, s) == (1.5, 7.5)
    assert S.cfg_scales(0.1, rng, p, s) == (1.5, 7.5)
    assert S.cfg_scales(0.3, rng, p, s) == (1.0, 0.0)
    assert S.cfg_scales(float(S.t_grid(4)[3]), rng, p, s) == (1.0, 0.0)
    assert S.distill_dt_factor(16) == 8.0 and S.distill_dt_factor(12, 2) == 4.0
    assert S.distill_intervals(12).tolist() == [2, 1, 1] * 4
    g12 = S.t_grid(12)
    assert g12.shape == (13,) and torch.all(g12[1:] > g12[:-1])
