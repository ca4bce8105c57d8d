"""Official checkpoint layout: a tiny random model written as index + shards with the official key
names loads through the real loader and reproduces the in-memory model exactly; wrong or partial
folders fail with messages naming what is wrong."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from pipeline import model_cache
from pipeline.generators.magi1.checkpoint import (
    INDEX_NAME,
    Magi1CheckpointError,
    Magi1NotSupportedError,
    load_dit,
    missing_checkpoint_files,
    resolve_weight_dir,
    write_official_checkpoint,
)
from pipeline.generators.magi1.config import preset
from pipeline.generators.magi1.dit import MagiDiT
from pipeline.tiny_models.magi1 import make_tiny_checkpoint

# Official VideoDiTModel parameter names (one layer), as in the released state dicts.
OFFICIAL_TOP = {
    "x_embedder.weight",
    "t_embedder.mlp.0.weight",
    "t_embedder.mlp.0.bias",
    "t_embedder.mlp.2.weight",
    "t_embedder.mlp.2.bias",
    "y_embedder.y_proj_xattn.0.weight",
    "y_embedder.y_proj_xattn.0.bias",
    "y_embedder.y_proj_adaln.0.weight",
    "y_embedder.y_proj_adaln.0.bias",
    "y_embedder.null_caption_embedding",
    "rope.bands",
    "videodit_blocks.final_layernorm.weight",
    "videodit_blocks.final_layernorm.bias",
    "final_linear.linear.weight",
}
OFFICIAL_LAYER = {
    "ada_modulate_layer.proj.0.weight",
    "ada_modulate_layer.proj.0.bias",
    "self_attention.linear_qkv.layer_norm.weight",
    "self_attention.linear_qkv.layer_norm.bias",
    "self_attention.linear_qkv.q.weight",
    "self_attention.linear_qkv.qx.weight",
    "self_attention.linear_qkv.k.weight",
    "self_attention.linear_qkv.v.weight",
    "self_attention.linear_kv_xattn.weight",
    "self_attention.linear_proj.weight",
    "self_attention.q_layernorm.weight",
    "self_attention.q_layernorm.bias",
    "self_attention.q_layernorm_xattn.weight",
    "self_attention.q_layernorm_xattn.bias",
    "self_attention.k_layernorm.weight",
    "self_attention.k_layernorm.bias",
    "self_attention.k_layernorm_xattn.weight",
    "self_attention.k_layernorm_xattn.bias",
    "self_attn_post_norm.weight",
    "self_attn_post_norm.bias",
    "mlp.layer_norm.weight",
    "mlp.layer_norm.bias",
    "mlp.linear_fc1.weight",
    "mlp.linear_fc2.weight",
    "mlp_post_norm.weight",
    "mlp_post_norm.bias",
}


def _run(model):
    cfg = model.cfg
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 4, 8, 8, generator=g)
    t = torch.tensor([[0.3, 0.02]])
    y = torch.randn(2, 1, cfg.caption_max_length, cfg.caption_channels, generator=g)
    mask = torch.ones(2, 1, cfg.caption_max_length, dtype=torch.int64)
    tok = model.tokens_per_chunk(2, 8, 8)
    return model(x, t, y, torch.tensor([False]), mask, torch.tensor([[0, tok], [0, 2 * tok]]))


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("magi") / "tiny", "tiny", seed=7, num_shards=2)


def test_official_key_names():
    names = set(dict(MagiDiT(preset("tiny").model_config).named_parameters()))
    expected = OFFICIAL_TOP | {f"videodit_blocks.layers.{i}.{k}" for i in range(2) for k in OFFICIAL_LAYER}
    assert names == expected


def test_written_layout_loads_and_reproduces_outputs_exactly(tiny_ckpt):
    root, cfg = tiny_ckpt
    wd = root / "inference_weight"
    index = json.loads((wd / INDEX_NAME).read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 2 and all((wd / s).is_file() for s in shards)
    assert "videodit_blocks.layers.1.self_attention.linear_qkv.qx.weight" in index["weight_map"]
    assert missing_checkpoint_files(root) == []

    model_cache.clear()
    loaded = load_dit(root, cfg)  # the MagiConfig gives distill/fp8
    ref = MagiDiT(cfg.model_config).init_random_(seed=7)
    assert torch.equal(_run(loaded), _run(ref))
    assert load_dit(root, cfg) is loaded  # loaded once per process
    assert load_dit(root, cfg, cache=False) is not loaded
    # bf16 load keeps the official fp32 islands
    bf = load_dit(root, cfg.model_config, dtype=torch.bfloat16)
    assert bf.x_embedder.weight.dtype == torch.float32
    assert bf.videodit_blocks.layers[0].mlp.linear_fc1.weight.dtype == torch.bfloat16


def test_single_file_and_distill_folder(tmp_path):
    m = MagiDiT(preset("tiny_distill").model_config).init_random_(seed=3)
    wd = tmp_path / "ck" / "inference_weight.distill"
    wd.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(wd / "model.safetensors"))
    with pytest.raises(Magi1CheckpointError, match="distill=true"):
        resolve_weight_dir(tmp_path / "ck", distill=False)
    loaded = load_dit(tmp_path / "ck", preset("tiny_distill"), cache=False)
    assert torch.equal(_run(loaded), _run(m))


def _copy(root, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(root, dst)
    return dst, dst / "inference_weight"


def test_missing_shard_is_named(tiny_ckpt, tmp_path):
    root, cfg = tiny_ckpt
    dst, wd = _copy(root, tmp_path)
    (wd / "model-00002-of-00002.safetensors").unlink()
    assert any("model-00002-of-00002" in m for m in missing_checkpoint_files(dst))
    with pytest.raises(Magi1CheckpointError, match="missing shard.*model-00002-of-00002"):
        load_dit(dst, cfg, cache=False)


def test_missing_and_unexpected_keys_are_listed(tiny_ckpt, tmp_path):
    root, cfg = tiny_ckpt
    dst, wd = _copy(root, tmp_path)
    index = json.loads((wd / INDEX_NAME).read_text())
    gone = "videodit_blocks.layers.1.mlp.linear_fc2.weight"
    shard = index["weight_map"].pop(gone)
    index["weight_map"]["videodit_blocks.layers.9.extra.weight"] = shard
    state = load_file(str(wd / shard))
    state.pop(gone)
    state["videodit_blocks.layers.9.extra.weight"] = torch.zeros(2)
    save_file(state, str(wd / shard))
    (wd / INDEX_NAME).write_text(json.dumps(index))
    with pytest.raises(Magi1CheckpointError) as e:
        load_dit(dst, cfg, cache=False)
    assert "missing keys: " + gone in str(e.value)
    assert "unexpected keys: videodit_blocks.layers.9.extra.weight" in str(e.value)


def test_wrong_architecture_and_wrong_folder(tiny_ckpt, tmp_path):
    root, cfg = tiny_ckpt
    other = cfg.model_config.__class__(**{**cfg.model_config.__dict__, "ffn_hidden_size": 96})
    with pytest.raises(Magi1CheckpointError, match="wrong shapes.*linear_fc1"):
        load_dit(root, other, cache=False)
    with pytest.raises(Magi1CheckpointError, match="does not exist"):
        load_dit(tmp_path / "nope", cfg, cache=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(Magi1CheckpointError, match="no inference_weight/"):
        load_dit(tmp_path / "empty", cfg, cache=False)
    assert missing_checkpoint_files(tmp_path / "empty")


def test_fp8_is_detected_and_refused(tiny_ckpt, tmp_path):
    root, cfg = tiny_ckpt
    with pytest.raises(Magi1NotSupportedError, match="not supported yet"):
        load_dit(root, cfg.model_config, distill=True, fp8=True, cache=False)
    # an fp8 folder only
    m = MagiDiT(cfg.model_config)
    fp8 = tmp_path / "q"
    write_official_checkpoint(m, fp8)
    (fp8 / "inference_weight").rename(fp8 / "inference_weight.fp8.distill")
    with pytest.raises(Magi1NotSupportedError, match="not supported yet"):
        load_dit(fp8, cfg, cache=False)
    # fp8 tensors / scale keys in a plain folder
    sd = m.state_dict()
    sd["videodit_blocks.layers.0.mlp.linear_fc1.weight_scale"] = torch.ones(1)
    write_official_checkpoint(sd, tmp_path / "s")
    with pytest.raises(Magi1NotSupportedError, match="weight_scale"):
        load_dit(tmp_path / "s", cfg, cache=False)
    sd = m.state_dict()
    sd["videodit_blocks.layers.0.mlp.linear_fc1.weight"] = sd["videodit_blocks.layers.0.mlp.linear_fc1.weight"].to(
        torch.float8_e4m3fn
    )
    write_official_checkpoint(sd, tmp_path / "f")
    with pytest.raises(Magi1NotSupportedError, match="F8_E4M3"):
        load_dit(tmp_path / "f", cfg, cache=False)
