"""Wan 2.2 I2V's two-expert layout (high-noise transformer, low-noise transformer_2 switched at the
boundary ratio) and the velocity-field adapter hook, on tiny random diffusers folders."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from pipeline.generators.adapter import load_adapter, save_adapter
from pipeline.generators.base import GenerationRequest, GeneratorConfigError, GeneratorLoadError
from pipeline.generators.velocity_adapter import VelocityAdapter
from pipeline.generators.wan.engine import WanI2VGenerator, missing_checkpoint_files
from pipeline.generators.wan.spec import WanI2VGeneratorConfig
from pipeline.tiny_models.wan import BOUNDARY_RATIO, TINY_CONFIG, make_tiny_wan_i2v

from .conftest import make_gen

P = "a red ball rolls to the left"
Z = TINY_CONFIG["vae"]["z_dim"]
TEXT = TINY_CONFIG["text_encoder"]["d_model"]


@pytest.fixture(scope="module")
def wan22(tmp_path_factory):
    return make_tiny_wan_i2v(tmp_path_factory.mktemp("ckpt") / "tiny_wan22", two_experts=True)


def adapter_folder(path, zero: bool, in_channels: int = 2 * Z + 4, seed: int = 0):
    kwargs = {"in_channels": in_channels, "out_channels": Z, "text_dim": TEXT, "hidden": 16}
    torch.manual_seed(seed)
    module = VelocityAdapter(**kwargs)
    if not zero:
        torch.nn.init.normal_(module.out.weight, std=0.5)
    return save_adapter(module, kwargs, path)


def video(gen, cond, seed=0):
    return gen.generate([GenerationRequest(P, cond, seed)])[0]


def test_two_experts_split_the_steps_at_the_boundary(wan22, cond64):
    g = make_gen(wan22, num_inference_steps=4, guidance_scale=2.0, guidance_scale_2=1.5)
    assert g.experts == ["transformer", "transformer_2"]
    seen: dict[str, list[float]] = {"transformer": [], "transformer_2": []}
    for name in seen:
        getattr(g.pipe, name).register_forward_pre_hook(
            lambda m, a, kw, name=name: seen[name].append(float(kw["timestep"].flatten()[0])), with_kwargs=True
        )
    out = video(g, cond64)
    assert out.shape == (9, 64, 64, 3)
    boundary = BOUNDARY_RATIO * g.pipe.scheduler.config.num_train_timesteps
    assert seen["transformer"] and seen["transformer_2"]  # both experts denoise
    assert min(seen["transformer"]) >= boundary > max(seen["transformer_2"])
    # two passes (CFG) per step, whichever expert runs it
    assert len(seen["transformer"]) + len(seen["transformer_2"]) == 2 * 4 == g.nfe
    # the low-noise expert's own guidance scale matters
    other = make_gen(wan22, num_inference_steps=4, guidance_scale=2.0, guidance_scale_2=3.0)
    assert not np.array_equal(out, video(other, cond64))


def test_two_expert_folder_checks(wan22, tiny_wan_path, tmp_path):
    broken = tmp_path / "wan22"
    shutil.copytree(wan22, broken)
    shutil.rmtree(broken / "transformer_2")
    index = json.loads((broken / "model_index.json").read_text())
    assert index["boundary_ratio"] == BOUNDARY_RATIO
    assert "transformer_2/" in missing_checkpoint_files(broken)
    del index["transformer_2"]
    (broken / "model_index.json").write_text(json.dumps(index))
    assert any("two-expert" in m for m in missing_checkpoint_files(broken))
    one_expert = WanI2VGeneratorConfig(
        checkpoint=str(tiny_wan_path), width=64, height=64, num_frames=9, fps=16, guidance_scale_2=2.0
    )
    assert any("guidance_scale_2" in p for p in WanI2VGenerator.settings_problems(one_expert))


@pytest.mark.parametrize("layout", ["wan21", "wan22"])
def test_zero_adapter_is_bit_identical_and_a_trained_one_changes_the_video(
    layout, tiny_wan_path, wan22, cond64, tmp_path
):
    path = tiny_wan_path if layout == "wan21" else wan22
    plain = video(make_gen(path), cond64)
    zero = adapter_folder(tmp_path / "zero", zero=True)
    np.testing.assert_array_equal(video(make_gen(path, adapter=zero), cond64), plain)
    trained = adapter_folder(tmp_path / "trained", zero=False)
    g = make_gen(path, adapter=trained)
    changed = video(g, cond64)
    assert np.abs(changed.astype(int) - plain).mean() > 0.5
    np.testing.assert_array_equal(video(make_gen(path, adapter=trained, adapter_scale=0.0), cond64), plain)
    # the correction enters every pass of every expert: the step's input, t and text embedding
    calls = []
    g.adapter.register_forward_hook(lambda m, args, out: calls.append([tuple(a.shape) for a in args]))
    video(g, cond64)
    assert len(calls) == 2 * 3  # CFG x steps
    assert calls[0] == [(1, 2 * Z + 4, 3, 8, 8), (1,), (1, 512, TEXT)]


def test_adapter_folder_errors(tiny_wan_path, cond64, tmp_path):
    with pytest.raises(GeneratorLoadError, match="no adapter_config.json"):
        load_adapter(tmp_path, "cpu", torch.float32)
    wrong = adapter_folder(tmp_path / "wrong", zero=False, in_channels=5)
    with pytest.raises(GeneratorLoadError, match="cannot build the adapter"):  # weights of another shape
        cfg = json.loads((wrong / "adapter_config.json").read_text())
        cfg["kwargs"]["in_channels"] = 7
        (wrong / "adapter_config.json").write_text(json.dumps(cfg))
        load_adapter(wrong, "cpu", torch.float32)
    five = adapter_folder(tmp_path / "five", zero=False, in_channels=5)
    with pytest.raises(RuntimeError):  # the backbone feeds 12 channels to a 5-channel adapter
        video(make_gen(tiny_wan_path, adapter=five), cond64)
    cfg = WanI2VGeneratorConfig(
        checkpoint=str(tiny_wan_path), width=64, height=64, num_frames=9, fps=16, adapter=str(tmp_path / "none")
    )
    assert any("generator.adapter=" in p for p in WanI2VGenerator.settings_problems(cfg))


def test_new_wan_fields_leave_run_keys_alone():
    from pipeline.fields import result_fields

    plain = result_fields(WanI2VGeneratorConfig(checkpoint="x", width=64, height=64, num_frames=9, fps=16))
    assert not {"guidance_scale_2", "adapter", "adapter_scale"} & set(plain)
    set_ = result_fields(
        WanI2VGeneratorConfig(checkpoint="x", width=64, height=64, num_frames=9, fps=16, adapter="a", adapter_scale=0.5)
    )
    assert set_["adapter"] == "a" and set_["adapter_scale"] == 0.5


def test_wrong_output_channels_are_named(tiny_wan_path, cond64, tmp_path):
    kwargs = {"in_channels": 2 * Z + 4, "out_channels": Z + 1, "text_dim": TEXT, "hidden": 8}
    path = save_adapter(VelocityAdapter(**kwargs), kwargs, tmp_path / "ad")
    with pytest.raises(GeneratorConfigError, match="do not fit this backbone"):
        video(make_gen(tiny_wan_path, adapter=path), cond64)
