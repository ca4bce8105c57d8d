"""CogVideoX through diffusers on tiny random folders: I2V and T2V load with from_pretrained, a
fine-tuned transformer swaps in, candidates equal their single runs, the adapter hook works on
frames-first latents, and settings the model cannot make are named before any load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.generators.adapter import save_adapter
from pipeline.generators.base import GenerationRequest, GeneratorConfigError
from pipeline.generators.cogvideox.engine import CogVideoXGenerator
from pipeline.generators.cogvideox.spec import CogVideoXGeneratorConfig
from pipeline.generators.velocity_adapter import VelocityAdapter
from pipeline.tiny_models.cogvideox import LATENT, MAX_TEXT, TEXT, make_tiny_cogvideox

P = "a red ball rolls to the left"


@pytest.fixture(scope="module")
def i2v(tmp_path_factory):
    return make_tiny_cogvideox(tmp_path_factory.mktemp("cog") / "i2v")


@pytest.fixture(scope="module")
def t2v(tmp_path_factory):
    return make_tiny_cogvideox(tmp_path_factory.mktemp("cog") / "t2v", task="t2v")


def gen(path, **kw):
    args = dict(width=64, height=64, num_frames=17, fps=8, num_inference_steps=3, guidance_scale=6.0)
    return CogVideoXGenerator(path, **{**args, **kw})


def req(cond, seed, prompt=P):
    return GenerationRequest(prompt, cond, seed)


def test_i2v_batches_equal_single_runs_and_nfe_is_counted(i2v, cond64):
    g2, g1 = gen(i2v, batch_size=2), gen(i2v)
    batched = g2.generate([req(cond64, 0), req(cond64, 1)])
    assert [v.shape for v in batched] == [(17, 64, 64, 3)] * 2 and batched[0].dtype == np.uint8
    assert g2.nfe == 2 * 3 * 2 == 2 * CogVideoXGenerator.planned_nfe(cfg(i2v), "i2v")  # CFG rows x steps
    for seed, b in zip((0, 1), batched):
        single = g1.generate([req(cond64, seed)])[0]
        assert np.abs(single.astype(int) - b).max() <= 2  # fp32 batched vs single matmuls
    assert np.abs(batched[0].astype(int) - batched[1]).mean() > 1.0
    assert np.array_equal(g1.generate([req(cond64, 0)])[0], g1.generate([req(cond64, 0)])[0])


def cfg(path, **kw):
    fields = dict(checkpoint=str(path), width=64, height=64, num_frames=17, fps=8, steps=3)
    return CogVideoXGeneratorConfig(**{**fields, **kw})


def test_t2v_folder_makes_videos_from_text_and_refuses_images(t2v, cond64):
    g = gen(t2v)
    assert g.pipeline_name == "CogVideoXPipeline"
    video = g.generate([req(None, 0)])[0]
    assert video.shape == (17, 64, 64, 3)
    with pytest.raises(ValueError, match="text-to-video"):
        g.generate([req(cond64, 0)])
    assert not CogVideoXGenerator.takes_images(cfg(t2v)) and CogVideoXGenerator.takes_images(cfg(t2v.parent / "i2v"))


def test_a_fine_tuned_transformer_replaces_the_folders(i2v, cond64, tmp_path):
    from diffusers import CogVideoXTransformer3DModel

    base = gen(i2v).generate([req(cond64, 0)])[0]
    tuned = CogVideoXTransformer3DModel.from_pretrained(i2v / "transformer")
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(0.05 * torch.randn_like(p))
    tuned.save_pretrained(tmp_path / "tuned")
    g = gen(i2v, transformer=tmp_path / "tuned")
    assert np.abs(g.generate([req(cond64, 0)])[0].astype(int) - base).mean() > 0.5
    # the folder's own transformer, given the same way (a pipeline folder: its transformer/), changes nothing
    assert np.array_equal(gen(i2v, transformer=i2v).generate([req(cond64, 0)])[0], base)


def test_adapter_on_frames_first_latents(i2v, cond64, tmp_path):
    kwargs = {"in_channels": 2 * LATENT, "out_channels": LATENT, "text_dim": TEXT["d_model"], "hidden": 8}
    zero = save_adapter(VelocityAdapter(**kwargs), kwargs, tmp_path / "zero")
    base = gen(i2v).generate([req(cond64, 0)])[0]
    assert np.array_equal(gen(i2v, adapter=zero).generate([req(cond64, 0)])[0], base)
    trained = VelocityAdapter(**kwargs)
    torch.nn.init.normal_(trained.out.weight, std=0.5)
    g = gen(i2v, adapter=save_adapter(trained, kwargs, tmp_path / "trained"))
    calls = []
    g.adapter.register_forward_hook(lambda m, args, out: calls.append([tuple(a.shape) for a in args]))
    assert np.abs(g.generate([req(cond64, 0)])[0].astype(int) - base).mean() > 0.5
    # channels first for the adapter: (B, C, F, h, w); CFG's two rows in one pass
    assert calls[0] == [(2, 2 * LATENT, 5, 8, 8), (2,), (2, MAX_TEXT, TEXT["d_model"])]


@pytest.mark.parametrize(
    "change, key",
    [
        ({"num_frames": 21}, "generator.num_frames=21"),  # 8k+1 frames
        ({"width": 72}, "generator.width x generator.height=72x64"),  # multiples of 16
        ({"width": 96}, "learned positional embeddings fix the size at 64x64"),
        ({"transformer": "/no/such/folder"}, "generator.transformer="),
        ({"adapter": "/no/such/adapter"}, "generator.adapter="),
        ({"dtype": "int8"}, "generator.dtype="),
    ],
)
def test_settings_the_model_cannot_make_are_named(i2v, change, key):
    problems = CogVideoXGenerator.settings_problems(cfg(i2v, **change))
    assert any(key in p for p in problems), problems
    if "transformer" not in change and "adapter" not in change and "dtype" not in change:
        with pytest.raises(GeneratorConfigError):
            gen(i2v, **{("num_inference_steps" if k == "steps" else k): v for k, v in change.items()})


def test_physicsiq_refuses_a_text_to_video_folder(t2v, small_dataset):
    from pipeline.benchmarks.physicsiq.benchmark import PhysicsIQBenchmark
    from pipeline.config import to_config
    from tests.conftest import compose

    overrides = ["generator=cogvideox_tiny", f"generator.checkpoint={t2v}", f"benchmark.root={small_dataset}"]
    with pytest.raises(ConfigError, match="text-to-video") as err:
        PhysicsIQBenchmark(to_config(compose(overrides)))
    assert "\n" not in str(err.value)
    index = json.loads((t2v / "model_index.json").read_text())
    assert index["_class_name"] == "CogVideoXPipeline"
