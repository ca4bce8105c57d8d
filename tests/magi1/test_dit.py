"""MagiDiT against a naive re-implementation of the documented conventions, plus unit checks of
RoPE, range attention (GQA, block-causal) and the KV cache (tiny configs, CPU, fp32)."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.generators.magi1.attention import RangeAttention
from pipeline.generators.magi1.config import tiny_model_config
from pipeline.generators.magi1.dit import MagiDiT, is_fp32_param
from pipeline.generators.magi1.rope import apply_rope, rope_angles
from tests.magi1.reference import naive_forward, rope_angle_table, rotate

TOL = 1e-4
CFG_45 = tiny_model_config()  # 4.5B-shaped: GELU, 16 channels, x_rescale 1
CFG_24 = tiny_model_config(
    gated_linear_unit=True, half_channel_vae=True, in_channels=32, out_channels=32, x_rescale_factor=0.1
)


def _inputs(cfg, N=2, dn=2, fpc=2, H=8, W=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 16, dn * fpc, H, W, generator=g)
    t = torch.rand(N, dn, generator=g)
    L = cfg.caption_max_length
    y = torch.randn(N * dn, 1, L, cfg.caption_channels, generator=g)
    mask = torch.zeros(N * dn, 1, L, dtype=torch.int64)
    for r in range(N * dn):
        mask[r, 0, : 3 + 2 * r] = 1
    return x, t, y, mask


@pytest.fixture(scope="module", params=["4.5b", "24b"])
def model(request):
    cfg = CFG_45 if request.param == "4.5b" else CFG_24
    return MagiDiT(cfg).init_random_(seed=1).eval()


def test_forward_matches_naive_reference(model):
    cfg = model.cfg
    x, t, y, mask = _inputs(cfg)
    tok = model.tokens_per_chunk(2, 8, 8)
    drop = torch.tensor([False, True])
    # chunk 0 sees itself, chunk 1 sees chunk 0 and itself
    kv = torch.tensor([[0, tok], [0, 2 * tok]])
    out = model(x, t, y, drop, mask, kv)
    P = {k: v.float() for k, v in model.state_dict().items()}
    ref = naive_forward(P, cfg, x, t, y, drop, mask, [[(0, tok), (0, 2 * tok)]] * 2)
    assert out.shape == x.shape and out.dtype == torch.float32
    err = (out - ref).abs().max().item()
    assert err < TOL * max(1.0, ref.abs().max().item()), err
    # a restricted range (chunk 1 sees only itself) and distill dt
    out2 = model(x, t, y, drop, mask, torch.tensor([[0, tok], [tok, 2 * tok]]), distill_dt=8.0)
    ref2 = naive_forward(P, cfg, x, t, y, drop, mask, [[(0, tok), (tok, 2 * tok)]] * 2, distill_dt=8.0)
    assert (out2 - ref2).abs().max().item() < TOL * max(1.0, ref2.abs().max().item())
    assert (out2 - out).abs().max().item() > 1e-3  # the range and dt matter


def test_flattened_batch_kv_range_equals_per_sample_rows(model):
    x, t, y, mask = _inputs(model.cfg)
    tok = model.tokens_per_chunk(2, 8, 8)
    per_sample = torch.tensor([[0, tok], [0, 2 * tok]])
    s_k = 2 * tok
    flat = torch.cat([per_sample, per_sample + s_k])  # official coordinates, N*dn rows
    a = model(x, t, y, False, mask, per_sample)
    b = model(x, t, y, False, mask, flat)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="outside"):
        model(x, t, y, False, mask, torch.tensor([[0, tok], [0, 3 * tok]]))


def test_rope_angles_and_rotation_match_explicit_formula():
    g = torch.Generator().manual_seed(0)
    bands = torch.rand(2, generator=g)
    for T, h, w, prev in [(3, 4, 6, 0), (2, 3, 5, 4), (1, 1, 2, 2)]:
        ours = rope_angles(bands, T, h, w, t_prev=prev)
        ref = rope_angle_table(bands, T, h, w, prev)
        assert torch.allclose(ours, ref, atol=1e-5), (T, h, w, prev)
        xq = torch.randn(T * h * w, 16, generator=g)
        rot = apply_rope(xq, ours.cos(), ours.sin())
        assert torch.allclose(rot, rotate(xq, ref), atol=1e-5)
        assert torch.equal(rot[:, 12:], xq[:, 12:])  # the last hd - 6*nb channels pass through
    # the time offset of cached chunks: the last rows of the longer grid
    full = rope_angles(bands, 5, 2, 2)
    assert torch.allclose(rope_angles(bands, 2, 2, 2, t_prev=3), full[-8:], atol=1e-6)


def test_range_attention_matches_masked_per_head_loop():
    g = torch.Generator().manual_seed(0)
    B, H, G, hd, tok, prev = 2, 6, 2, 8, 5, 2
    S = 3 * tok
    Sk = S + prev * tok
    q = torch.randn(B, H, S, hd, generator=g)
    k = torch.randn(B, G, Sk, hd, generator=g)
    v = torch.randn(B, G, Sk, hd, generator=g)
    q_ranges = [(j * tok, (j + 1) * tok) for j in range(3)]
    k_ranges = [(0, 3 * tok), (2 * tok, 4 * tok), (tok, 5 * tok)]
    per_batch = [k_ranges, [(0, tok), (0, 4 * tok), (4 * tok, 5 * tok)]]
    for kr in (k_ranges, per_batch):
        out = RangeAttention()(q, k, v, q_ranges, kr)
        for b in range(B):
            rows = kr[b] if kr is per_batch else kr
            allowed = torch.zeros(S, Sk, dtype=torch.bool)
            for (qs, qe), (ks, ke) in zip(q_ranges, rows):
                allowed[qs:qe, ks:ke] = True
            for h in range(H):
                grp = h // (H // G)  # GQA: consecutive query heads share a group
                sc = (q[b, h] @ k[b, grp].T / math.sqrt(hd)).masked_fill(~allowed, float("-inf"))
                ref = torch.softmax(sc, -1) @ v[b, grp]
                assert torch.allclose(out[b, h], ref, atol=1e-5), (b, h)


def test_kv_cache_gives_the_same_attention_as_recomputing(model):
    """3 chunks: chunk 0 clean (sees itself), chunks 1, 2 see chunk 0 and older window chunks.
    Computing chunk 0 once into the cache and then chunks 1-2 with slice_point=1 equals the
    forward over all three."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(5)
    fpc, H, W = 2, 8, 8
    tok = model.tokens_per_chunk(fpc, H, W)
    x = torch.randn(1, 16, 3 * fpc, H, W, generator=g)
    t = torch.tensor([[0.9999, 0.4, 0.05]])
    L = cfg.caption_max_length
    y = torch.randn(3, 1, L, cfg.caption_channels, generator=g)
    mask = torch.ones(3, 1, L, dtype=torch.int64)
    mask[0, 0, 4:] = 0
    full = model(x, t, y, False, mask, torch.tensor([[0, tok], [0, 2 * tok], [tok, 3 * tok]]))

    for offload in (False, True):
        cache = model.new_kv_cache(max_chunks=3, tokens_per_chunk=tok, offload=offload)
        first = model(
            x[:, :, :fpc],
            t[:, :1],
            y[:1],
            False,
            mask[:1],
            torch.tensor([[0, tok]]),
            cache,
            slice_point=0,
            update_kv_cache=True,
        )
        rest = model(
            x[:, :, fpc:],
            t[:, 1:],
            y[1:],
            False,
            mask[1:],
            torch.tensor([[0, 2 * tok], [tok, 3 * tok]]),
            cache,
            slice_point=1,
        )
        scale = 1e-5 * max(1.0, full.abs().max().item())  # fp32 rounding level
        assert (first - full[:, :, :fpc]).abs().max() < scale
        assert (rest - full[:, :, fpc:]).abs().max() < scale
    # without the cache the cached range is unknown
    with pytest.raises(ValueError, match="kv_cache"):
        model(
            x[:, :, fpc:], t[:, 1:], y[1:], False, mask[1:], torch.tensor([[0, 2 * tok], [tok, 3 * tok]]), slice_point=1
        )


def test_kv_cache_write_skips_last_chunk_when_nearly_clean(model):
    fpc, H, W = 2, 8, 8
    tok = model.tokens_per_chunk(fpc, H, W)
    x, t, y, mask = _inputs(model.cfg, N=1, dn=2)
    cache = model.new_kv_cache(max_chunks=2, tokens_per_chunk=tok)
    model(
        x,
        t,
        y,
        False,
        mask,
        torch.tensor([[0, tok], [0, 2 * tok]]),
        cache,
        update_kv_cache=True,
        distill_nearly_clean_chunk=True,
    )
    assert cache.k[0][:, :, :tok].abs().sum() > 0
    assert cache.k[0][:, :, tok:].abs().sum() == 0


def test_dtype_layout_and_bf16_close_to_fp32():
    m32 = MagiDiT(CFG_24).init_random_(seed=2)
    mbf = MagiDiT(CFG_24, dtype=torch.bfloat16)
    mbf.load_state_dict(m32.state_dict())
    for name, p in mbf.named_parameters():
        assert p.dtype == (torch.float32 if is_fp32_param(name) else torch.bfloat16), name
    assert is_fp32_param("videodit_blocks.layers.3.self_attention.q_layernorm.weight")
    assert not is_fp32_param("videodit_blocks.layers.3.self_attention.q_layernorm_xattn.weight")
    x, t, y, mask = _inputs(CFG_24, N=1)
    tok = m32.tokens_per_chunk(2, 8, 8)
    kv = torch.tensor([[0, tok], [0, 2 * tok]])
    a, b = m32(x, t, y, False, mask, kv), mbf(x, t, y, False, mask, kv)
    assert b.dtype == torch.float32
    assert (a - b).abs().max() / a.abs().max() < 5e-2


def test_bad_inputs_are_rejected(model):
    x, t, y, mask = _inputs(model.cfg, N=1)
    tok = model.tokens_per_chunk(2, 8, 8)
    kv = torch.tensor([[0, tok], [0, 2 * tok]])
    with pytest.raises(ValueError, match="x must be"):
        model(x[:, :8], t, y, False, mask, kv)
    with pytest.raises(ValueError, match="rows"):
        model(x, t, y[:1], False, mask, kv)
    with pytest.raises(ValueError, match="valid token"):
        model(x, t, y, False, torch.zeros_like(mask), kv)
