"""Magi1Generator through the registry with the values of conf/generator/magi1_tiny.yaml (tiny random
models in the official folder layouts), on the CPU."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from pipeline.generators import generator_class, generator_from_config, missing_checkpoint_files_for
from pipeline.generators.base import GenerationRequest, GeneratorConfigError
from pipeline.generators.magi1.engine import resolve_magi_config
from pipeline.generators.magi1.spec import Magi1GeneratorConfig as Magi1Config
from pipeline.tiny_models.magi1 import is_complete, make_tiny_magi1

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_magi1(tmp_path_factory.mktemp("magi1") / "magi1")


def tiny_cfg(tiny_dir, **changes) -> Magi1Config:
    y = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/generator/magi1_tiny.yaml"))
    y.pop("defaults")
    for k in ("checkpoint", "vae_checkpoint", "t5_checkpoint", "special_tokens"):
        y[k] = y[k].replace("checkpoints/tiny/magi1", str(tiny_dir))
    # Two chunks keep these engine tests quick; the yaml's 120 frames fill the 5 s Physics-IQ needs.
    y.update({"num_frames": 24, **changes})
    return Magi1Config(**y)


@pytest.fixture(scope="module")
def gen(tiny_dir):
    return generator_from_config(tiny_cfg(tiny_dir), device="cpu")


def _img(seed=0, size=64):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_tiny_folder_is_idempotent_and_complete(tiny_dir):
    assert is_complete(tiny_dir)
    stamp = (tiny_dir / "tiny_params.json").stat().st_mtime_ns
    assert make_tiny_magi1(tiny_dir) == tiny_dir
    assert (tiny_dir / "tiny_params.json").stat().st_mtime_ns == stamp
    assert missing_checkpoint_files_for(tiny_cfg(tiny_dir)) == []
    missing = missing_checkpoint_files_for(tiny_cfg(tiny_dir, checkpoint=str(tiny_dir / "nope")))
    assert missing and "nope" in missing[0]


def test_i2v_frames_batch_and_hooks(gen):
    assert gen.kind == "magi1" and gen.accepts_clips and (gen.width, gen.height, gen.fps) == (64, 64, 24.0)
    img = _img()
    steps, chunks = [], []

    def on_step(info):
        assert info.latents.shape == (2, 16, 12, 8, 8) and info.denoised.shape[2] == 6 * len(info.chunk_ids)
        steps.append((info.step, info.chunk_ids, info.chunk_t))

    def on_chunk(info):
        chunks.append((info.chunk, tuple(info.latent.shape)))

    reqs = [GenerationRequest("a ball rolls", img, 5), GenerationRequest("a ball rolls", img, 6)]
    out = gen.generate(reqs, on_step=on_step, on_chunk=on_chunk)
    # i2v 24 frames: ceil((24//4 + 1)/6) = 2 chunks -> 48 frames (upstream keeps the image frame)
    assert gen.frames_out == gen.output_frames("i2v") == 48
    assert [o.shape for o in out] == [(48, 64, 64, 3)] * 2 and out[0].dtype == np.uint8
    assert [s[1] for s in steps] == [(0,), (0, 1), (0, 1), (0, 1), (1,)]
    assert chunks == [(0, (2, 16, 6, 8, 8)), (1, (2, 16, 6, 8, 8))]
    # each candidate equals its single run; prompts are encoded once
    encoded = gen.text.stats.encoded
    single = gen.generate([reqs[1]])[0]
    assert np.abs(single.astype(int) - out[1].astype(int)).max() <= 1
    assert gen.text.stats.encoded == encoded
    assert np.abs(out[0].astype(int) - out[1].astype(int)).mean() > 1


def test_t2v_v2v_frame_counts_and_96_frame_geometry(gen, tiny_dir):
    out = gen.generate([GenerationRequest("x", None, 0)])[0]
    assert out.shape == (gen.output_frames("t2v"), 64, 64, 3) == (24, 64, 64, 3)
    clip = np.stack([_img(i) for i in range(40)])
    v = gen.generate([GenerationRequest("x", clip, 0)])[0]
    # prefix 32 frames -> 8 latent frames; ceil((24//4 + 8)/6) = 3 chunks, chunk 0 is the clean prefix,
    # chunk 1 keeps 4 generated latent frames (decoded as tiles of 3 + 1 -> 13 frames), chunk 2 -> 24
    assert gen.chunk_latent_lengths("v2v") == [4, 6] and v.shape[0] == gen.output_frames("v2v") == 37
    g96 = generator_from_config(tiny_cfg(tiny_dir, num_frames=96), device="cpu")
    assert g96.output_frames("i2v") == 120 and g96.output_frames("t2v") == 96
    assert g96.chunk_latent_lengths("v2v") == [4, 6, 6, 6, 6]
    assert g96.dit is gen.dit and g96.vae is gen.vae and g96.text is gen.text  # resident models


def test_step_hook_can_replace_latents(tiny_dir):
    gen = generator_from_config(tiny_cfg(tiny_dir, width=32, height=32), device="cpu")
    img = _img(3, 32)
    base = gen.generate([GenerationRequest("p", img, 1)])[0]
    again = gen.generate([GenerationRequest("p", img, 1)], on_step=lambda i: None)[0]
    assert np.array_equal(base, again)  # deterministic by seed
    changed = gen.generate([GenerationRequest("p", img, 1)], on_step=lambda i: i.latents * 0 if i.step == 2 else None)[
        0
    ]
    assert not np.array_equal(base, changed)


def test_config_resolution_and_magi_json(tiny_dir):
    c = tiny_cfg(tiny_dir, steps=8, text_scale=5.0, history_scale=1.2, distill=None)
    m = resolve_magi_config(c)
    r = m.runtime_config
    assert (r.num_steps, r.video_size_w, r.num_frames, r.cfg_number) == (8, 64, 24, 3)
    assert list(r.text_scales) == [5.0, 5.0, 5.0, 0.0, 0.0] and list(r.prev_chunk_scales) == [1.2, 1.2, 1.2, 1.0, 1.0]
    d = resolve_magi_config(tiny_cfg(tiny_dir, distill=True))
    assert d.engine_config.distill and d.runtime_config.cfg_number == 1
    js = resolve_magi_config(tiny_cfg(tiny_dir, magi_config=str(tiny_dir / "dit/magi_config.json")))
    assert js.model_config == m.model_config and js.runtime_config.load == str(tiny_dir / "dit")
    with pytest.raises(GeneratorConfigError, match="num_steps"):
        resolve_magi_config(tiny_cfg(tiny_dir, steps=6))
    bad = json.loads((tiny_dir / "dit/magi_config.json").read_text())
    bad["engine_config"]["my_flag"] = 1
    bad_path = tiny_dir.parent / "bad.json"
    bad_path.write_text(json.dumps(bad))
    with pytest.raises(GeneratorConfigError, match="unsupported field.*my_flag"):
        resolve_magi_config(tiny_cfg(tiny_dir, magi_config=str(bad_path)))


def test_distill_engine_runs(tiny_dir):
    g = generator_from_config(tiny_cfg(tiny_dir, distill=True, width=32, height=32), device="cpu")
    out = g.generate([GenerationRequest("p", _img(0, 32), 0)])[0]
    assert out.shape == (48, 32, 32, 3)
    assert g.num_model_calls == 5  # one DiT pass per forward step (nearly-clean pass folded in)


def test_every_magi1_config_field_is_read(tiny_dir):
    """No dead flags: from_config, the registry and the launcher (replica_dims) read every Magi1Config
    field (device: the sample stage)."""
    read = set()

    class Tracking:
        def __init__(self, cfg):
            self._cfg = cfg

        def __getattr__(self, name):
            read.add(name)
            return getattr(self._cfg, name)

    cfg = Tracking(tiny_cfg(tiny_dir, width=32, height=32))
    missing_checkpoint_files_for(cfg)
    generator_class("magi1").replica_dims(cfg)
    generator_from_config(cfg, device="cpu")
    fields = {f.name for f in dataclasses.fields(Magi1Config)} - {"device"}
    assert fields <= read, fields - read


def test_a_session_driven_chunk_by_chunk_gives_what_generate_gives(gen):
    img = _img(3)
    reqs = [GenerationRequest("a ball rolls", img, 8), GenerationRequest("a ball rolls", img, 9)]
    expected = gen.generate(reqs)
    session = gen.start(reqs)
    assert session.rows == 2 and session.chunks_total == 2
    new = []
    while (frames := session.advance_to_chunk_boundary()) is not None:
        assert frames.dtype.is_floating_point is False and frames.shape[0] == 2
        new.append(frames.shape[1])
    assert new == [24, 24] and session.done
    videos = session.videos()
    assert all(np.array_equal(v, e) for v, e in zip(videos, expected))
    with pytest.raises(ValueError, match="share one prompt"):
        gen.start([reqs[0], GenerationRequest("another prompt", img, 1)])


def test_a_session_keeps_decoded_frames_with_their_rows(gen):
    img = _img(4)
    reqs = [GenerationRequest("a ball rolls", img, s) for s in (1, 2)]
    single = gen.generate([reqs[1]])[0]
    session = gen.start(reqs)
    first = session.advance_to_chunk_boundary()
    session.select_rows([1, 1, 1])  # the second candidate, three times: frames and state alike
    assert session.origins == [1, 1, 1] and session.frames[0].shape[0] == 3
    assert all(np.array_equal(session.frames[0][k].cpu().numpy(), first[1].cpu().numpy()) for k in range(3))
    for video in session.videos():
        assert np.abs(video.astype(int) - single.astype(int)).max() <= 1  # batched vs single rows


def test_compute_counters_of_generate_and_a_session(gen):
    img = _img(5)
    reqs = [GenerationRequest("a ball rolls", img, s) for s in (1, 2)]
    nfe, decodes = gen.nfe, gen.vae_decodes
    gen.generate(reqs)
    # tiny base model: 3 CFG passes x 5 forward steps (two chunks, window 4 of 4 steps) x 2 rows
    assert gen.nfe - nfe == 3 * 5 * 2 and gen.vae_decodes - decodes == 2 * 2  # a decode per chunk and row
    nfe = gen.nfe
    gen.start(reqs).videos()
    assert gen.nfe - nfe == 3 * 5 * 2


@pytest.mark.parametrize("mode", ["i2v", "v2v"])
def test_planned_nfe_is_what_generation_spends(gen, tiny_dir, mode):
    from pipeline.generators.magi1.engine import Magi1Generator

    condition = _img(6) if mode == "i2v" else np.stack([_img(s) for s in range(32)])
    reqs = [GenerationRequest("a ball rolls", condition, s) for s in (1, 2)]
    nfe = gen.nfe
    gen.generate(reqs)
    assert gen.nfe - nfe == 2 * Magi1Generator.planned_nfe(tiny_cfg(tiny_dir), mode)
