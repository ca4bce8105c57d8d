"""Official MagiConfig JSON parsing, presets and the pipeline's Magi1GeneratorConfig schema."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pipeline.generators.magi1.config import (
    FIELD_USE,
    VARIANTS,
    MagiConfig,
    MagiConfigError,
    load_magi_config,
    parse_magi_config,
    preset,
)


def _official_dict(variant="24b"):
    d = preset(variant).to_dict()
    d["model_config"]["params_dtype"] = "torch.bfloat16"
    return d


def test_presets_match_the_shipped_configs():
    m = preset("24b").model_config
    assert (
        m.num_layers,
        m.hidden_size,
        m.ffn_hidden_size,
        m.num_attention_heads,
        m.num_query_groups,
        m.kv_channels,
        m.in_channels,
        m.half_channel_vae,
        m.x_rescale_factor,
        m.gated_linear_unit,
    ) == (48, 6144, 16384, 48, 8, 128, 32, True, 0.1, True)
    m = preset("4.5b").model_config
    assert (
        m.num_layers,
        m.hidden_size,
        m.ffn_hidden_size,
        m.num_attention_heads,
        m.num_query_groups,
        m.in_channels,
        m.half_channel_vae,
        m.x_rescale_factor,
        m.gated_linear_unit,
    ) == (34, 3072, 12288, 24, 8, 16, False, 1.0, False)
    assert preset("24b").runtime_config.num_steps == 32 and preset("24b").runtime_config.cfg_number == 3
    assert preset("24b_distill").runtime_config.num_steps == 16
    assert preset("24b_distill").runtime_config.cfg_number == 1 and preset("24b_distill").engine_config.distill
    assert preset("4.5b").runtime_config.num_steps == 64
    assert (preset("4.5b").runtime_config.video_size_h, preset("4.5b").runtime_config.video_size_w) == (720, 720)
    assert round(preset("24b").model_config.num_parameters() / 1e9, 1) == 23.9
    assert round(preset("4.5b").model_config.num_parameters() / 1e9, 1) == 4.5
    for v in VARIANTS:
        preset(v)


def test_json_roundtrip_and_official_field_names(tmp_path):
    d = _official_dict("24b")
    assert set(d["engine_config"]) >= {"cp_strategy", "fp8_quant", "distill", "kv_offload", "shortcut_mode"}
    p = tmp_path / "c.json"
    p.write_text(json.dumps(d))
    cfg = load_magi_config(p)
    assert cfg.model_config.params_dtype == "torch.bfloat16"
    assert cfg == preset("24b")
    cfg.to_json(tmp_path / "d.json")
    assert load_magi_config(tmp_path / "d.json") == cfg


def test_every_field_is_accounted_for():
    for sec, cls in (
        ("model_config", MagiConfig().model_config.__class__),
        ("runtime_config", MagiConfig().runtime_config.__class__),
        ("engine_config", MagiConfig().engine_config.__class__),
    ):
        for f in dataclasses.fields(cls):
            assert f"{sec}.{f.name}" in FIELD_USE, f"{sec}.{f.name}"


@pytest.mark.parametrize(
    "section,key,value,match",
    [
        ("engine_config", "fp8_quant", True, "fp8_quant=true.*not supported yet"),
        ("engine_config", "pp_size", 2, "pp_size=2"),
        ("engine_config", "cp_strategy", "cp_shuffle_overlap", "cp_shuffle_overlap"),
        ("engine_config", "enable_cuda_graph", True, "enable_cuda_graph"),
        ("engine_config", "ulysses_overlap_degree", 2, "ulysses_overlap_degree"),
        ("runtime_config", "cfg_number", 1, "cfg_number must be 3"),
        ("runtime_config", "num_steps", 30, "divisible"),
        ("runtime_config", "temporal_downsample_factor", 8, "temporal_downsample_factor"),
        ("model_config", "model_name", "other", "model_name"),
        ("model_config", "cond_gating_ratio", 0.5, "cond_gating_ratio"),
    ],
)
def test_unsupported_values_name_the_field(section, key, value, match):
    d = _official_dict("24b")
    d[section][key] = value
    with pytest.raises(MagiConfigError, match=match):
        parse_magi_config(d)


def test_unknown_and_missing_fields():
    d = _official_dict("4.5b")
    d["engine_config"]["tp_size"] = 2
    with pytest.raises(MagiConfigError, match="unsupported field.*tp_size"):
        parse_magi_config(d)
    d = _official_dict("4.5b")
    del d["runtime_config"]["clean_t"]
    with pytest.raises(MagiConfigError, match="missing field.*clean_t"):
        parse_magi_config(d)
    with pytest.raises(MagiConfigError, match="sections"):
        parse_magi_config({"model_config": {}})
    with pytest.raises(MagiConfigError, match="cannot read"):
        load_magi_config("/nonexistent/x.json")


def test_pipeline_schema_registered():
    from pipeline.generators import GENERATORS, GeneratorConfig
    from pipeline.generators.magi1.spec import Magi1GeneratorConfig as Magi1Config

    assert GENERATORS.specs["magi1"].config is Magi1Config and issubclass(Magi1Config, GeneratorConfig)
    for f in dataclasses.fields(Magi1Config):
        assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING, f.name
    assert Magi1Config().variant.replace("-", "_") in VARIANTS
