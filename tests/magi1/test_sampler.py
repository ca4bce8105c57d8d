"""The chunk-wise MAGI-1 sampler against a naive sampler written here from the documented conventions
(SandAI-org/MAGI-1: inference/pipeline/, the chunk-wise sampler): every forward recomputes all chunks (no KV cache), the
schedule is derived per chunk from its own step counter, CFG scales come from a hand-written lookup.
Tiny random DiT, CPU, fp32."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.generators.magi1 import sampler as SM
from pipeline.generators.magi1.config import preset
from pipeline.generators.magi1.dit import MagiDiT

H = W = 4  # latent 4x4 -> 2x2 tokens per frame, 24 tokens per chunk
L = 16
TOL = 1e-4


def _model(variant: str, seed: int, equal_null_tokens: bool = False):
    m = MagiDiT(preset(variant).model_config).init_random_(seed).eval()
    if equal_null_tokens:
        # The official cache holds K/V of finished chunks computed in the null-caption pass (adaLN
        # token [-1]); a recompute-everything sampler runs them inside the text pass too. With equal
        # null tokens both are the same, so the naive loop below is exact.
        with torch.no_grad():
            m.y_embedder.null_caption_embedding[-2].copy_(m.y_embedder.null_caption_embedding[-1])
    return m


@pytest.fixture(scope="module")
def base_model():
    return _model("tiny", 3, equal_null_tokens=True)


@pytest.fixture(scope="module")
def distill_model():
    return _model("tiny_distill", 4)


def _settings(variant: str, steps: int, **kw) -> SM.SamplerSettings:
    cfg = preset(variant).replace(runtime_config={"num_steps": steps})
    return SM.SamplerSettings.from_magi_config(cfg, **kw)


def _captions(model, nch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    C = model.cfg.caption_channels
    te = torch.randn(1, nch, L, C, generator=g)
    tm = torch.zeros(1, nch, L, dtype=torch.int64)
    tm[..., :7] = 1
    null = model.y_embedder.null_caption_embedding.detach()
    ne = null.reshape(1, 1, L, C).expand(1, nch, L, C).clone()
    nm = torch.zeros(1, nch, L, dtype=torch.int64)
    nm[..., :50] = 1
    return te, tm, ne, nm


# ------------------------------------------------------------------------------ naive sampler
def naive_grid(n: int) -> torch.Tensor:
    t = torch.linspace(0, 1, n + 1) ** 2
    return (t / 3) / (1 - 2 * t / 3)


def naive_scales(t: float, rng, prev, text):
    i = max(i for i, e in enumerate(rng) if e - 1e-7 < t)
    return prev[i], text[i]


def naive_sample(model, st: SM.SamplerSettings, noise, te, tm, ne, nm, prefix=None):
    """Batch 1. Every forward holds chunks 0..newest; finished / prefix chunks at clean_t with a null row
    and a key range of themselves; no KV cache, slice_point 0 (RoPE from 0)."""
    n, Wc = st.num_steps, 6
    per = n // 4
    grid = naive_grid(n)
    x = noise.clone()
    T = x.shape[2]
    nch = T // Wc
    tp = 0 if prefix is None else prefix.shape[2]
    off = tp // Wc
    tok = model.tokens_per_chunk(Wc, H, W)
    done = [n if c < off else 0 for c in range(nch)]
    out = []
    total = per * (nch + 3 - off)
    dt_fac = n / 4 * 2 if st.distill else None
    for g in range(total):
        active = [c for c in range(off, nch) if (c - off) * per <= g < (c - off) * per + n]
        newest = active[-1] + 1
        xin = x[:, :, : newest * Wc].clone()
        if tp:
            xin[:, :, :tp] = prefix
        t = torch.tensor([st.clean_t if c not in active else float(grid[done[c]]) for c in range(newest)])
        kv = []
        for c in range(newest):
            if c not in active:
                k = 1
            else:
                k = st.noise2clean_kvrange[done[c] // per]
            kv.append([max(0, c + 1 - k) * tok, (c + 1) * tok])
        y_t = torch.stack([te[0, c] if c in active else ne[0, c] for c in range(newest)])[:, None]
        m_t = torch.stack([tm[0, c] if c in active else nm[0, c] for c in range(newest)])[:, None]
        y_n, m_n = ne[0, :newest][:, None], nm[0, :newest][:, None]
        kv = torch.tensor(kv)
        if st.cfg_number == 3:
            v_text = model(xin, t[None], y_t, False, m_t, kv)
            v_pre = model(xin, t[None], y_n, True, m_n, kv)
            v = torch.zeros_like(xin)
            for c in active:
                sl = slice(c * Wc, (c + 1) * Wc)
                v_un = model(
                    xin[:, :, sl],
                    t[None, c : c + 1],
                    ne[0, c][None, None],
                    True,
                    nm[0, c][None, None],
                    torch.tensor([[0, tok]]),
                )
                p, s = naive_scales(float(t[c]), st.cfg_t_range, st.prev_chunk_scales, st.text_scales)
                v[:, :, sl] = (1 - p) * v_un + (p - s) * v_pre[:, :, sl] + s * v_text[:, :, sl]
        else:
            old = active[0]
            if float(t[old]) > st.nearly_clean_threshold:
                sl = slice(old * Wc, (old + 1) * Wc)
                xcat = torch.cat([xin, xin[:, :, sl]], dim=2)
                tcat = torch.cat([t, t[old : old + 1]])[None]
                kvc = torch.cat([kv, torch.tensor([[newest * tok, (newest + 1) * tok]])])
                out_ = model(
                    xcat,
                    tcat,
                    torch.cat([y_t, y_t[old : old + 1]]),
                    False,
                    torch.cat([m_t, m_t[old : old + 1]]),
                    kvc,
                    distill_dt=dt_fac,
                )
                v = out_[:, :, : newest * Wc].clone()
                v[:, :, sl] = (
                    st.prev_chunks_scale * out_[:, :, sl] + (1 - st.prev_chunks_scale) * out_[:, :, newest * Wc :]
                )
            else:
                v = model(xin, t[None], y_t, False, m_t, kv, distill_dt=dt_fac)
        for c in active:
            sl = slice(c * Wc, (c + 1) * Wc)
            s = done[c]
            x[:, :, sl] = xin[:, :, sl] + v[:, :, sl] * (grid[s + 1] - grid[s])
            done[c] += 1
            if done[c] == n:
                start = 0 if (c == 0 and tp == 1) else max(c * Wc, tp)
                out.append(x[:, :, start : (c + 1) * Wc].clone())
    return out


def _close(a, b, tol=TOL):
    err = (a - b).abs().max().item()
    assert err <= tol * max(1.0, b.abs().max().item()), err


CASES = [  # (variant, steps, num_frames, prefix latent frames)
    ("tiny", 8, 72, 0),  # t2v, 3 chunks, 2 steps per stage: cached chunks are read between refreshes
    ("tiny", 4, 48, 1),  # i2v
    ("tiny", 8, 48, 8),  # v2v: one clean prefix chunk in the cache, 2 frames overwritten
    ("tiny_distill", 8, 72, 0),
    ("tiny_distill", 4, 48, 1),
]


@pytest.mark.parametrize("variant,steps,nf,tp", CASES)
def test_kv_cache_sampler_equals_naive_recompute(variant, steps, nf, tp, base_model, distill_model):
    model = base_model if variant == "tiny" else distill_model
    st = _settings(variant, steps)
    T = SM.latent_frames(nf, tp)
    nch = T // 6
    noise = SM.draw_noise(7, (1, 16, T, H, W))
    prefix = None if tp == 0 else torch.randn(1, 16, tp, H, W, generator=torch.Generator().manual_seed(1))
    te, tm, ne, nm = _captions(model, nch)
    res = SM.sample(model, st, noise, te, tm, ne, nm, prefix)
    ref = naive_sample(model, st, noise, te, tm, ne, nm, prefix)
    assert len(res.chunks) == len(ref) == nch - tp // 6
    for a, b in zip(res.chunks, ref):
        assert a.shape == b.shape
        _close(a, b)
    assert res.forward_steps == steps // 4 * (nch + 3 - tp // 6)


def test_geometry_and_frame_counts(base_model):
    assert SM.latent_frames(96) == 24 and SM.latent_frames(96, 1) == 30 and SM.latent_frames(96, 8) == 36
    st = _settings("tiny", 4)
    for tp, nf, lens in [(0, 48, [6, 6]), (1, 24, [6, 6]), (8, 24, [4, 6])]:
        T = SM.latent_frames(nf, tp)
        te, tm, ne, nm = _captions(base_model, T // 6)
        pre = None if tp == 0 else torch.zeros(1, 16, tp, H, W)
        res = SM.sample(base_model, st, SM.draw_noise(0, (1, 16, T, H, W)), te, tm, ne, nm, pre)
        assert [c.shape[2] for c in res.chunks] == lens
        assert res.latent.shape == (1, 16, sum(lens), H, W)
        # 3 DiT passes per forward step (+1 prefix-cache pass for v2v)
        assert res.model_calls == 3 * res.forward_steps + (1 if tp >= 6 else 0)


def test_deterministic_by_seed_and_batch_equals_single_runs(base_model):
    st = _settings("tiny", 4)
    T = SM.latent_frames(24, 1)
    te, tm, ne, nm = _captions(base_model, T // 6)
    prefix = torch.randn(1, 16, 1, H, W, generator=torch.Generator().manual_seed(5))
    n1, n2 = SM.draw_noise(11, (1, 16, T, H, W)), SM.draw_noise(12, (1, 16, T, H, W))
    assert torch.equal(n1, SM.draw_noise(11, (1, 16, T, H, W))) and not torch.equal(n1, n2)
    a = SM.sample(base_model, st, n1, te, tm, ne, nm, prefix).latent
    b = SM.sample(base_model, st, n2, te, tm, ne, nm, prefix).latent
    assert torch.equal(a, SM.sample(base_model, st, n1, te, tm, ne, nm, prefix).latent)
    ab = SM.sample(base_model, st, torch.cat([n1, n2]), te, tm, ne, nm, prefix).latent
    _close(ab[0:1], a, 1e-5)
    _close(ab[1:2], b, 1e-5)
    assert (a - b).abs().max() > 1e-2


class Spy:
    """Wraps the DiT and records every call (inputs and output)."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, x, t, y, drop, mask, kv, cache=None, **kw):
        out = self.model(x, t, y, drop, mask, kv, cache, **kw)
        self.calls.append(
            dict(
                x=x.clone(),
                t=t.clone(),
                y=y.clone(),
                drop=drop,
                mask=mask.clone(),
                kv=kv.clone(),
                cache=cache is not None,
                out=out.clone(),
                **kw,
            )
        )
        return out


def test_cfg_combination_per_t_range(base_model):
    # distinct scales per interval so a wrong interval shows
    st = _settings("tiny", 4)
    st = SM.SamplerSettings(
        **{**st.__dict__, "prev_chunk_scales": (1.1, 1.2, 1.3, 1.4, 1.5), "text_scales": (2.1, 2.2, 2.3, 0.4, 0.5)}
    )
    T = SM.latent_frames(96)  # 4 chunks: step 3 has chunks at t = grid[3], grid[2], grid[1], grid[0]
    te, tm, ne, nm = _captions(base_model, T // 6)
    spy = Spy(base_model)
    steps = {}
    SM.sample(
        spy,
        st,
        SM.draw_noise(3, (1, 16, T, H, W)),
        te,
        tm,
        ne,
        nm,
        on_step=lambda d: steps.__setitem__(d["step"], (d["latents"].clone(), d["chunk_t_before"], d["chunk_t"])),
    )
    assert len(spy.calls) == 3 * 7
    text, pre, un = spy.calls[9:12]  # step 3
    prev_x = steps[2][0]
    x_after, t_before, t_after = steps[3]
    assert t_before == pytest.approx([0.3000000119, 0.1000000089, 0.0217391, 0.0], abs=1e-6)
    # pass 1: text rows, adaLN token [-2], no cache write; pass 2: null rows, token [-1], writes the
    # cache (slice_point 0 and no clean chunk: the official code leaves the cache alone here)
    assert text["drop"] is False and text["update_kv_cache"] is False
    assert torch.equal(text["y"], te[0]) and torch.equal(text["mask"], tm[0])
    assert pre["drop"] is True and torch.equal(pre["y"], ne[0])
    # pass 3: every chunk alone (batch of 4 one-chunk clips), null rows, no history, no cache
    assert un["x"].shape == (4, 16, 6, H, W) and un["cache"] is False and un["slice_point"] == 0
    assert un["kv"].tolist() == [[0, 24]] and un["t"].shape == (4, 1)
    expected_scales = [(1.4, 0.4), (1.3, 2.3), (1.2, 2.2), (1.1, 2.1)]  # by interval of t_before
    for j, (p, s) in enumerate(expected_scales):
        sl = slice(j * 6, (j + 1) * 6)
        v = (1 - p) * un["out"][j : j + 1] + (p - s) * pre["out"][:, :, sl] + s * text["out"][:, :, sl]
        want = prev_x[:, :, sl] + v * (t_after[j] - t_before[j])
        _close(x_after[:, :, sl], want, 1e-5)
    # kv ranges of step 3 (noise2clean_kvrange 5,4,3,2 by stage; oldest chunk = stage 3 sees 2 chunks)
    assert (text["kv"] // 24).tolist() == [[0, 1], [0, 2], [0, 3], [0, 4]]
    # step 4: window slid, the finished chunk 0 is prepended at clean_t with a null row and written
    t4, p4 = spy.calls[12], spy.calls[13]
    assert t4["t"][0, 0].item() == pytest.approx(0.9999) and t4["slice_point"] == 0
    assert torch.equal(t4["y"][0], ne[0, 0]) and torch.equal(t4["mask"][0], nm[0, 0])
    assert p4["update_kv_cache"] is True and p4["cache"] is True and t4["update_kv_cache"] is False
    assert (t4["kv"] // 24).tolist() == [[0, 1], [0, 2], [0, 3], [0, 4]]


def test_i2v_overwrites_frame0_before_every_forward(base_model):
    st = _settings("tiny", 4)
    T = SM.latent_frames(24, 1)
    te, tm, ne, nm = _captions(base_model, T // 6)
    prefix = torch.randn(1, 16, 1, H, W, generator=torch.Generator().manual_seed(9))
    spy = Spy(base_model)
    last = {}

    def hook(d):
        if 0 in d["chunk_ids"]:
            last.update(t0=d["chunk_t_before"][0], t1=d["chunk_t"][0], den=d["denoised"][:, :, 0].clone())

    res = SM.sample(spy, st, SM.draw_noise(2, (1, 16, T, H, W)), te, tm, ne, nm, prefix, on_step=hook)
    seen = 0
    for i, c in enumerate(spy.calls):
        if i % 3 != 2:  # the two passes with history (pass 3 holds the chunks as a batch)
            assert c["slice_point"] == 0
            assert torch.equal(c["x"][:, :, 0], prefix[:, :, 0])  # overwritten, t unchanged
            seen += 1
    assert seen == 2 * 5
    # the returned frame 0 is the integrated value prefix + v * dt of chunk 0's last step
    frame0 = res.chunks[0][:, :, 0]
    v = (last["den"] - prefix[:, :, 0]) / (1 - last["t0"])
    _close(frame0, prefix[:, :, 0] + v * (last["t1"] - last["t0"]), 1e-5)
    assert (frame0 - prefix[:, :, 0]).abs().max() > 1e-4
    assert res.chunks[0].shape[2] == 6


def test_on_chunk_row_selection_continues_from_chosen_candidate(distill_model):
    st = _settings("tiny_distill", 4)
    T = SM.latent_frames(72)
    te, tm, ne, nm = _captions(distill_model, T // 6)
    n1, n2 = SM.draw_noise(21, (1, 16, T, H, W)), SM.draw_noise(22, (1, 16, T, H, W))
    single2 = SM.sample(distill_model, st, n2, te, tm, ne, nm).latent
    calls = []

    def pick(d):
        calls.append(d["chunk"])
        return [1, 1] if d["chunk"] == 0 else None

    both = SM.sample(distill_model, st, torch.cat([n1, n2]), te, tm, ne, nm, on_chunk=pick)
    assert calls == [0, 1, 2]
    _close(both.latent[0:1], single2, 1e-5)
    _close(both.latent[1:2], single2, 1e-5)


def test_hook_replaces_latents(base_model):
    st = _settings("tiny", 4)
    T = SM.latent_frames(24)
    te, tm, ne, nm = _captions(base_model, T // 6)
    noise = SM.draw_noise(0, (1, 16, T, H, W))
    zero = SM.sample(base_model, st, torch.zeros_like(noise), te, tm, ne, nm).latent
    got = SM.sample(
        base_model,
        st,
        noise,
        te,
        tm,
        ne,
        nm,
        on_step=lambda d: torch.zeros_like(d["latents"]) if d["step"] == -1 else None,
    ).latent
    assert not torch.equal(got, zero)
    # replacing the latents by zeros before step 0 runs (hook after step 0 of a zero start) equals zero start
    first = {}

    def hook(d):
        if d["step"] == 0 and not first:
            first["x"] = d["latents"].clone()
        return None

    SM.sample(base_model, st, torch.zeros_like(noise), te, tm, ne, nm, on_step=hook)
    got = SM.sample(
        base_model, st, noise, te, tm, ne, nm, on_step=lambda d: first["x"].clone() if d["step"] == 0 else None
    ).latent
    _close(got, zero, 1e-6)
    with pytest.raises(ValueError, match="shape"):
        SM.sample(base_model, st, noise, te, tm, ne, nm, on_step=lambda d: torch.zeros(1))


def test_distill_dt_and_nearly_clean_pass(distill_model):
    st = _settings("tiny_distill", 4)
    T = SM.latent_frames(24)
    te, tm, ne, nm = _captions(distill_model, T // 6)
    spy = Spy(distill_model)
    SM.sample(spy, st, SM.draw_noise(0, (1, 16, T, H, W)), te, tm, ne, nm)
    assert len(spy.calls) == 4
    assert all(c["distill_dt"] == pytest.approx(2.0) for c in spy.calls)  # num_steps/4*2
    # t grid 4 steps: grid[3] = 0.3000000119 > 0.3 -> the last step appends the chunk without history
    assert [c["distill_nearly_clean_chunk"] for c in spy.calls] == [False, False, False, True]
    last = spy.calls[-1]
    assert last["x"].shape[2] == 12 and (last["kv"] // 24).tolist() == [[0, 1], [1, 2]]
    assert math.isclose(last["t"][0, 0].item(), last["t"][0, 1].item())
