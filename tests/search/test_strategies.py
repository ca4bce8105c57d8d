"""Search inside sampling on the tiny MAGI-1 and the tiny V-JEPA 2 (CPU): the strategies that claim to
reduce to plain sampling do so bit for bit, children diverge, beam keeps the best, and the compute
counters are exact."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.generators.base import GenerationRequest
from pipeline.search.beam.spec import BeamConfig
from pipeline.search.beam.strategy import Beam
from pipeline.search.smc.spec import SMCConfig
from pipeline.search.smc.strategy import SMC, resample


def test_beam_of_one_is_a_single_sample(gen, scorer, request_):
    found = Beam.run(BeamConfig(beams=1, children=1, base_seed=3), gen, request_, scorer)
    single = gen.generate([GenerationRequest(request_.prompt, request_.condition, 3)])[0]
    assert len(found.videos) == 1 and np.array_equal(found.videos[0], single)
    assert found.seeds == [3] and all(entry.get("rows", [0]) == [0] for entry in found.trace)
    assert [entry["decided"] for entry in found.trace] == [True, True, True, False, False, False]
    assert found.surprises[0] == pytest.approx(scorer.score_frames(single).surprise, abs=1e-5)


def test_smc_without_steering_is_best_of_n(gen, scorer, request_):
    cfg = SMCConfig(particles=3, beta=0.0, ess_threshold=1.0, base_seed=5)
    found = SMC.run(cfg, gen, request_, scorer)
    plain = gen.start([GenerationRequest(request_.prompt, request_.condition, s) for s in (5, 6, 7)]).videos()
    assert found.seeds == [5, 6, 7]
    assert all(np.array_equal(a, b) for a, b in zip(found.videos, plain))
    decided = [entry for entry in found.trace if entry["decided"]]
    assert len(decided) == 3 and all(not e["resampled"] and e["ess"] == pytest.approx(3.0) for e in decided)


def test_beam_keeps_the_best_and_its_children_diverge(gen, scorer, request_):
    nfe = gen.nfe
    found = Beam.run(BeamConfig(beams=1, children=3, base_seed=0), gen, request_, scorer)
    first = found.trace[0]
    best = int(np.nanargmin(np.array(first["surprise"], dtype=float)))
    assert first["kept"] == [best] and first["rows"] == [best] * 3
    assert set(first["fresh_noise"]) == {"1", "2"}  # the first child keeps its own noise
    assert found.seeds == [best] * 3
    last = [e for e in found.trace if e["decided"]][-1]
    kept = last["kept"][0]
    assert last["rows"] == [kept] * 3
    a, b, c = (v.astype(int) for v in found.videos)
    # chunks 0..2 are finished at the last decision and shared; chunks 3..5 were in the window
    # (fixed by the parent's state); chunk 6 is the children's own
    shared, own = 24 * 6, 24 * 6
    # the same state in three rows of one batch: equal up to a rounding step of the batched matmuls
    assert np.abs(a[:shared] - b[:shared]).max() <= 1 and np.abs(a[:shared] - c[:shared]).max() <= 1
    assert np.abs(a[own:] - b[own:]).mean() > 1 and np.abs(b[own:] - c[own:]).mean() > 1
    # compute: the rows never change in number, so NFEs are those of 3 plain samples
    plain = gen.nfe
    gen.generate([GenerationRequest(request_.prompt, request_.condition, s) for s in (0, 1, 2)])
    assert plain - nfe == gen.nfe - plain


def test_smc_resamples_towards_the_best_and_its_children_diverge(gen, scorer, request_):
    cfg = SMCConfig(particles=3, beta=1e4, ess_threshold=1.0, potential="diff", base_seed=0)
    found = SMC.run(cfg, gen, request_, scorer)
    first = found.trace[0]
    best = int(np.nanargmax(first["weights"]))
    assert first["resampled"] and first["rows"] == [best] * 3 and set(first["fresh_noise"]) == {"1", "2"}
    assert best == int(np.nanargmin(np.array(first["surprise"], dtype=float)))  # reward = -surprise
    a, b = (v.astype(int) for v in found.videos[:2])
    assert np.abs(a[-24:] - b[-24:]).mean() > 1  # the fresh-noise chunk differs
    # the surprises the loop measured are the scorer's on the same frames
    for video, value in zip(found.videos, found.surprises):
        assert value == pytest.approx(scorer.score_frames(video).surprise, abs=1e-5)


def test_resampling_follows_the_weights():
    rng = np.random.default_rng(0)
    assert resample(np.array([0.0, 1.0, 0.0]), "multinomial", rng) == [1, 1, 1]
    assert resample(np.array([0.5, 0.0, 0.5]), "systematic", np.random.default_rng(1)).count(1) == 0
    counts = np.bincount(
        [i for _ in range(2000) for i in resample(np.array([0.2, 0.8]), "systematic", rng)], minlength=2
    )
    assert abs(counts[1] / counts.sum() - 0.8) < 0.01
