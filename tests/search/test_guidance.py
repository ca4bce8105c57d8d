"""Reward gradient guidance (WMReward) on the tiny MAGI-1, the tiny Wan I2V and the tiny V-JEPA 2
(CPU): scale 0 is the unguided video bit for bit, scale > 0 is not (WMReward #8) and descends the
reward, guidance scores frames exactly as the scorer does, and the compute counters are exact."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from pipeline.generators.base import GenerationRequest
from pipeline.search.guidance.spec import GuidanceConfig
from pipeline.search.guidance.steps import parse_pattern, schedule_problems, updates_per_step
from pipeline.search.guidance.strategy import Guidance


def _request(request_, seed):
    return GenerationRequest(request_.prompt, request_.condition, seed)


def test_scale_zero_is_the_unguided_video_and_a_positive_scale_is_not(gen, scorer, request_):
    single = gen.generate([_request(request_, 3)])[0]
    off = Guidance.run(GuidanceConfig(n=1, base_seed=3, scale=0.0, frequency=1), gen, request_, scorer)
    assert np.array_equal(off.videos[0], single)
    # the guide ran at every forward step (decode, reward, gradient) and moved nothing
    assert len(off.trace) == 10 and all(e["step_size"] == [0.0] for e in off.trace)
    on = Guidance.run(GuidanceConfig(n=1, base_seed=3, scale=0.05, frequency=1), gen, request_, scorer)
    assert not np.array_equal(on.videos[0], single)
    assert all(e["step_size"][0] > 0 for e in on.trace)


def test_guidance_lowers_the_final_surprise_over_seeds(gen, scorer, request_):
    plain = Guidance.run(GuidanceConfig(n=4, scale=0.0, frequency=1), gen, request_, scorer)
    guided = Guidance.run(GuidanceConfig(n=4, scale=0.05, frequency=1), gen, request_, scorer)
    assert plain.seeds == guided.seeds == [0, 1, 2, 3]
    assert np.mean(guided.surprises) < np.mean(plain.surprises) - 0.01
    # the surprises the strategy reports are the scorer's on the final videos
    assert guided.surprises[0] == pytest.approx(scorer.score_frames(guided.videos[0]).surprise, abs=1e-5)


def test_compute_is_counted_exactly(gen, scorer, request_):
    nfe, decodes, backwards = gen.nfe, gen.vae_decodes, scorer.backwards
    cfg = GuidanceConfig(n=2, scale=0.05, frequency=3)
    found = Guidance.run(cfg, gen, request_, scorer)
    guided_steps = [e["guided_step"] for e in found.trace]
    assert guided_steps == [0, 3, 6, 9]  # every third of the 10 forward steps
    # 10 forward steps of 3 CFG passes per row; guidance through the clean estimate adds no pass
    assert gen.nfe - nfe == 2 * 3 * 10
    # 7 finished chunks and 4 guided decodes, for each of the 2 rows
    assert gen.vae_decodes - decodes == 2 * (7 + 4)
    assert scorer.backwards - backwards > 0


def test_window_guides_every_chunk_in_flight_and_options_run(gen, scorer, request_):
    cfg = GuidanceConfig(
        n=1,
        scale=0.05,
        frequency=1,
        chunks="window",
        decode_scale=0.5,
        worst_window=True,
        checkpointing=True,
        context_frames=4,
    )
    found = Guidance.run(cfg, gen, request_, scorer)
    single = gen.generate([_request(request_, 0)])[0]
    assert len(found.videos[0]) == len(single) and not np.array_equal(found.videos[0], single)
    assert all(e["step_size"][0] > 0 for e in found.trace)


def test_guidance_scores_frames_as_the_scorer_does(scorer):
    frames = np.random.default_rng(1).integers(0, 256, (40, 48, 56, 3), dtype=np.uint8)
    ref = scorer.score_frames(frames)
    pixels = torch.from_numpy(frames).float()[None].requires_grad_(True)
    assert float(scorer.guidance_surprises(pixels).detach()[0]) == pytest.approx(ref.surprise, abs=1e-6)
    # clean context (no gradient) + target: the same clip, the same windows
    context = torch.from_numpy(frames[None, :8])
    assert float(scorer.guidance_surprises(pixels[:, 8:], context).detach()[0]) == pytest.approx(ref.surprise, abs=1e-6)
    worst = scorer.guidance_surprises(pixels, worst_window=True)
    assert float(worst.detach()[0]) == pytest.approx(max(ref.window_surprises), abs=1e-6)
    worst.sum().backward()
    assert pixels.grad is not None and float(pixels.grad.abs().sum()) > 0


def test_step_patterns_and_schedule():
    assert parse_pattern("0x5,1x45") == [0] * 5 + [1] * 45
    assert parse_pattern("2") is None
    for bad in ("1y4", "ax3", "1x0", "1x2,3"):
        with pytest.raises(ValueError):
            parse_pattern(bad)
    cfg = GuidanceConfig(pattern="0x1,2x3")
    assert updates_per_step(cfg, 4) == [0, 2, 2, 2]
    assert updates_per_step(GuidanceConfig(start=0.5, end=1.0), 4) == [0, 0, 1, 1]
    assert updates_per_step(GuidanceConfig(pattern="3"), 2) == [3, 3]
    assert "covers 4 steps" in schedule_problems(GuidanceConfig(pattern="1x4"), 8)[0]
    assert schedule_problems(GuidanceConfig(start=0.9, end=1.0), 4)  # 0.9 > 3/4: no step in range


@pytest.fixture(scope="module")
def wan(tmp_path_factory):
    from pipeline.generators.wan.engine import WanI2VGenerator
    from pipeline.tiny_models.wan import make_tiny_wan_i2v

    folder = make_tiny_wan_i2v(tmp_path_factory.mktemp("wan") / "wan_i2v")
    return WanI2VGenerator(folder, width=64, height=64, num_frames=33, fps=16, num_inference_steps=6)


def test_wan_scale_zero_is_unguided_and_guidance_descends(wan, scorer, request_):
    single = wan.generate([_request(request_, 0)])[0]
    off = Guidance.run(GuidanceConfig(n=1, scale=0.0, frequency=1), wan, request_, scorer)
    assert np.array_equal(off.videos[0], single) and len(off.trace) == 6
    plain = Guidance.run(GuidanceConfig(n=3, scale=0.0, frequency=2), wan, request_, scorer)
    nfe = wan.nfe
    guided = Guidance.run(GuidanceConfig(n=3, scale=0.2, frequency=2), wan, request_, scorer)
    assert wan.nfe - nfe == 3 * 6 * 2  # 6 steps, classifier-free guidance: no extra pass
    assert [e["guided_step"] for e in guided.trace] == [0, 2, 4]
    assert np.mean(guided.surprises) < np.mean(plain.surprises)


def test_gradient_through_the_model(gen, scorer, request_):
    """The velocity recomputed with grad: more passes, each counted; the cache is read, never
    written (so the unguided rows are untouched: scale 0 is still the plain video)."""
    single = gen.generate([_request(request_, 0)])[0]
    nfe = gen.nfe
    off = Guidance.run(GuidanceConfig(n=1, scale=0.0, frequency=3, gradient="model"), gen, request_, scorer)
    assert np.array_equal(off.videos[0], single)
    assert gen.nfe - nfe == 3 * 10 + 3 * 4  # the plan, and 3 passes for each of the 4 guided steps
    cfg = GuidanceConfig(n=1, scale=0.05, frequency=3, gradient="model", checkpointing=True)
    on = Guidance.run(cfg, gen, request_, scorer)
    assert not np.array_equal(on.videos[0], single) and all(e["step_size"][0] > 0 for e in on.trace)
    held = Guidance.run(GuidanceConfig(n=1, scale=0.05, frequency=3), gen, request_, scorer)
    assert not np.array_equal(on.videos[0], held.videos[0])  # the model's Jacobian changes the step


@pytest.fixture(scope="module")
def cogvideox(tmp_path_factory):
    from pipeline.generators.cogvideox.engine import CogVideoXGenerator
    from pipeline.tiny_models.cogvideox import make_tiny_cogvideox

    folder = make_tiny_cogvideox(tmp_path_factory.mktemp("cogvideox") / "i2v")
    return CogVideoXGenerator(folder, width=64, height=64, num_frames=33, fps=8, num_inference_steps=4)


def test_cogvideox_scale_zero_is_unguided_and_guidance_descends(cogvideox, scorer, request_):
    """CogVideoX (frames-first latents, v-prediction with DPM-Solver): the guide's clean estimate
    is the scheduler's own x0, and guidance behaves as on the flow-matching engines."""
    single = cogvideox.generate([_request(request_, 0)])[0]
    off = Guidance.run(GuidanceConfig(n=1, scale=0.0, frequency=1), cogvideox, request_, scorer)
    assert np.array_equal(off.videos[0], single) and len(off.trace) == 4
    plain = Guidance.run(GuidanceConfig(n=3, scale=0.0, frequency=2), cogvideox, request_, scorer)
    nfe = cogvideox.nfe
    guided = Guidance.run(GuidanceConfig(n=3, scale=0.3, frequency=2), cogvideox, request_, scorer)
    assert cogvideox.nfe - nfe == 3 * 4 * 2  # CFG rows, no extra pass for guidance
    assert [e["guided_step"] for e in guided.trace] == [0, 2]
    assert not all(np.array_equal(a, b) for a, b in zip(guided.videos, plain.videos))
    assert np.mean(guided.surprises) < np.mean(plain.surprises)


def test_cogvideox_clean_estimate_is_the_schedulers(cogvideox, request_):
    """At every step the guide's x + (1 - t) v equals the pred_original_sample of diffusers'
    scheduler step (channels first)."""
    seen = []
    sched = cogvideox.pipe.scheduler

    def guide(state):
        seen.append(state.clean_estimate(0).clone())
        return None

    originals = []
    inner = type(sched).step

    @functools.wraps(inner)  # the same signature: the pipeline and the engine read it
    def spy(self, *args, **kwargs):
        out = inner(self, *args, **kwargs)
        originals.append(out[1] if isinstance(out, tuple) else out.pred_original_sample)
        return out

    type(sched).step = spy
    try:
        cogvideox.start([_request(request_, 0)]).advance_to_chunk_boundary(guide)
    finally:
        type(sched).step = inner
    assert len(seen) == len(originals) == 4
    for ours, theirs in zip(seen, originals):
        torch.testing.assert_close(ours, theirs.float().transpose(1, 2), rtol=1e-4, atol=1e-4)
