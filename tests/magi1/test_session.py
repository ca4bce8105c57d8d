"""The MAGI-1 sampling session a search strategy drives: stepping equals the one-call sampler,
rows re-index together (latents, KV cache, finished chunks, caption rows), duplicated rows continue
exactly like their parent, fresh noise makes children diverge only where no step has been, and the
compute counters are exact. Tiny random DiT, CPU, fp32."""

from __future__ import annotations

import pytest
import torch

from pipeline.generators.magi1 import sampler as SM
from tests.magi1.test_sampler import H, W, _captions, _close, _model, _settings


@pytest.fixture(scope="module")
def base_model():
    return _model("tiny", 3, equal_null_tokens=True)


@pytest.fixture(scope="module")
def distill_model():
    return _model("tiny_distill", 4)


def _inputs(model, frames=72, seeds=(21,)):
    T = SM.latent_frames(frames)
    te, tm, ne, nm = _captions(model, T // 6)
    noise = torch.cat([SM.draw_noise(s, (1, 16, T, H, W)) for s in seeds])
    return noise, (te, tm, ne, nm)


def test_stepping_by_chunk_boundaries_equals_the_one_call_sampler(distill_model):
    st = _settings("tiny_distill", 4)
    noise, caps = _inputs(distill_model, seeds=(1, 2))
    whole = SM.sample(distill_model, st, noise, *caps)
    session = SM.SamplingSession(distill_model, st, noise, *caps)
    chunks = []
    while (info := session.advance_to_chunk_boundary()) is not None and info["finished_chunk"] is not None:
        chunks.append(info["finished_chunk"][0])
        assert session.chunk_t[info["finished_chunk"][0]] == 1.0
    assert chunks == [0, 1, 2] and session.done
    got = session.result()
    assert torch.equal(got.latent, whole.latent) and got.model_calls == whole.model_calls
    with pytest.raises(RuntimeError, match="finished"):
        session.step()


@pytest.mark.parametrize("variant, passes", [("tiny", 3), ("tiny_distill", 1)])
def test_nfe_counts_passes_times_rows(variant, passes, base_model, distill_model):
    model = base_model if variant == "tiny" else distill_model
    st = _settings(variant, 4)
    noise, caps = _inputs(model, frames=48, seeds=(1, 2, 3))
    res = SM.sample(model, st, noise, *caps)
    stages = len(SM.S.window_stages(noise.shape[2] // 6, st.window_size, 0))
    assert res.forward_steps == stages * (4 // st.window_size)
    assert res.nfe == passes * 3 * res.forward_steps  # 3 rows
    # a v2v prefix of one whole chunk adds the one pass that fills its KV cache, for every row
    T = SM.latent_frames(24, 6)
    te, tm, ne, nm = _captions(model, T // 6)
    noise = torch.cat([SM.draw_noise(s, (1, 16, T, H, W)) for s in (1, 2)])
    res = SM.sample(model, st, noise, te, tm, ne, nm, torch.zeros(1, 16, 6, H, W))
    assert res.nfe == 2 * (passes * res.forward_steps + 1)


def test_a_duplicated_row_continues_exactly_as_its_parent(base_model):
    st = _settings("tiny", 4)
    noise, caps = _inputs(base_model, frames=72, seeds=(7,))
    single = SM.sample(base_model, st, noise, *caps).latent
    session = SM.SamplingSession(base_model, st, noise, *caps)
    session.advance_to_chunk_boundary()
    session.select_rows([0, 0, 0])  # the batch grows: latents, KV cache, finished chunks, captions
    while not session.done:
        session.step()
    out = session.result().latent
    assert out.shape[0] == 3
    for row in (0, 1, 2):  # the same numbers up to where a row sits in the batched matmuls
        _close(out[row : row + 1], single, 1e-5)


def test_selection_shrinks_the_batch_to_the_chosen_rows(distill_model):
    st = _settings("tiny_distill", 4)
    noise, caps = _inputs(distill_model, seeds=(21, 22))
    second = SM.sample(distill_model, st, noise[1:2], *caps).latent
    session = SM.SamplingSession(distill_model, st, noise, *caps)
    session.advance_to_chunk_boundary()
    session.select_rows([1])
    while not session.done:
        session.step()
    _close(session.result().latent, second, 1e-5)
    with pytest.raises(ValueError, match="indices into the 1 rows"):
        session.select_rows([1])


def test_fresh_noise_makes_children_diverge_only_where_no_step_has_been(distill_model):
    st = _settings("tiny_distill", 4)
    noise, caps = _inputs(distill_model, frames=144, seeds=(5,))  # 6 chunks: 2 beyond the first window
    session = SM.SamplingSession(distill_model, st, noise, *caps)
    info = session.advance_to_chunk_boundary()
    assert info is not None and info["finished_chunk"][0] == 0
    untouched = [c for c, k in enumerate(session.counts) if k == 0]
    assert untouched, "the test needs chunks no step has reached yet"
    session.select_rows([0, 0], fresh_noise={1: 99})
    while not session.done:
        session.step()
    res = session.result()
    parent, child = res.latent[0:1], res.latent[1:2]
    # the chunk finished before the boundary is shared; the chunks drawn afresh differ
    assert torch.equal(res.chunks[0][0], res.chunks[0][1])
    assert (parent[:, :, untouched[0] * 6 :] - child[:, :, untouched[0] * 6 :]).abs().max() > 1e-2
    # the child is exactly the run whose initial noise is the parent's where steps had been and
    # seed 99's elsewhere: nothing of the fresh region was read before the boundary
    start = untouched[0] * 6
    composite = noise.clone()
    composite[:, :, start:] = SM.draw_noise(99, noise.shape)[:, :, start:]
    _close(child, SM.sample(distill_model, st, composite, *caps).latent, 1e-5)
    _close(parent, SM.sample(distill_model, st, noise, *caps).latent, 1e-5)
