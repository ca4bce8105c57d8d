"""A tiny randomly initialised MAGI-1 model set in the official folder layouts, for the demo and tests::

    <out>/dit/inference_weight/            base DiT (preset "tiny", official keys, 2 shards + index)
    <out>/dit/inference_weight.distill/    distill DiT (same architecture, other seed)
    <out>/dit/magi_config.json             official MagiConfig JSON of the tiny base model
    <out>/vae/                             ViTVAE folder (config.json + diffusion_pytorch_model.safetensors)
    <out>/t5/t5-v1_1-xxl/                  tiny T5 encoder + tokenizer (HF layout, two .bin shards)
    <out>/special_tokens.npz               official special-token arrays (32-dim)
    <out>/tiny_params.json                 what was built (idempotence)

``make_tiny_magi1(out)`` is idempotent: a complete folder with matching ``tiny_params.json`` is
recognised without importing torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.files import TINY_MARKER, build_folder

from .tokenizer import build_local_tokenizer

TINY_VERSION = 1
PARAMS_FILE = TINY_MARKER
_REQUIRED = (
    "dit/inference_weight/model.safetensors.index.json",
    "dit/inference_weight.distill/model.safetensors.index.json",
    "dit/magi_config.json",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "t5/t5-v1_1-xxl/config.json",
    "t5/t5-v1_1-xxl/pytorch_model.bin.index.json",
    "special_tokens.npz",
)


def _params(seed: int) -> dict:
    return {"tiny_version": TINY_VERSION, "seed": int(seed), "variant": "tiny"}


def is_complete(out: str | os.PathLike, seed: int = 0) -> bool:
    out = Path(out)
    try:
        if json.loads((out / PARAMS_FILE).read_text()) != _params(seed):
            return False
    except (OSError, ValueError):
        return False
    return all((out / f).is_file() for f in _REQUIRED)


def make_tiny_magi1(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Build (or reuse) the tiny MAGI-1 folder set under ``out_dir``; returns it."""
    out = Path(out_dir)
    import torch

    from pipeline.generators.magi1.checkpoint import write_official_checkpoint
    from pipeline.generators.magi1.config import preset
    from pipeline.generators.magi1.dit import MagiDiT

    def build(tmp: Path) -> None:
        with torch.random.fork_rng(devices=[]):
            write_official_checkpoint(
                MagiDiT(preset("tiny_distill").model_config).init_random_(seed + 1), tmp / "dit", distill=True
            )
            make_tiny_checkpoint(tmp / "dit", "tiny", seed=seed)
            write_tiny_vae(tmp / "vae", seed=seed)
            write_tiny_t5(tmp / "t5", seed=seed)
        write_tiny_special_tokens(
            tmp / "special_tokens.npz", dim=preset("tiny").model_config.caption_channels, seed=seed
        )
        # the JSON should point at the final folder, not the temporary one
        cfg_path = tmp / "dit" / "magi_config.json"
        data = json.loads(cfg_path.read_text())
        data["runtime_config"].update(
            load=str(out / "dit"), vae_pretrained=str(out / "vae"), t5_pretrained=str(out / "t5")
        )
        cfg_path.write_text(json.dumps(data, indent=4))
        (tmp / PARAMS_FILE).write_text(json.dumps(_params(seed), indent=2))

    return build_folder(out, build, lambda folder: is_complete(folder, seed))


def make_tiny_checkpoint(
    root: str | os.PathLike,
    variant: str = "tiny",
    *,
    seed: int = 0,
    num_shards: int = 2,
    model_changes: dict | None = None,
) -> tuple[Path, Any]:
    """A random-weight model of ``variant`` (``tiny``/``tiny_distill``; any preset works but the
    real sizes are huge) written to ``root`` in the official layout, plus ``root/magi_config.json``
    (official MagiConfig JSON with ``runtime_config.load = root``). Returns (root, config)."""
    import dataclasses

    from pipeline.generators.magi1.checkpoint import write_official_checkpoint
    from pipeline.generators.magi1.config import preset
    from pipeline.generators.magi1.dit import MagiDiT

    cfg = preset(variant)
    if model_changes:
        cfg = dataclasses.replace(cfg, model_config=dataclasses.replace(cfg.model_config, **model_changes))
    root = Path(root)
    cfg = cfg.replace(runtime_config={"load": str(root)}).validate()
    model = MagiDiT(cfg.model_config).init_random_(seed)
    write_official_checkpoint(model, root, distill=cfg.engine_config.distill, num_shards=num_shards)
    cfg.to_json(root / "magi_config.json")
    return root, cfg


def write_tiny_vae(folder: str | os.PathLike, seed: int = 0, ddconfig: dict[str, Any] | None = None) -> Path:
    """Write a small random ViTVAE in the official folder format (config.json + safetensors)."""
    from pipeline.generators.magi1.vae import TINY_VAE_DDCONFIG, MagiVAE
    from pipeline.generators.magi1.vae_model import ViTVAEConfig, init_random_

    cfg = ViTVAEConfig.from_ddconfig({**TINY_VAE_DDCONFIG, **(ddconfig or {})})
    model = MagiVAE(cfg)
    init_random_(model, seed)
    return model.save_folder(folder)


TINY_T5_CONFIG: dict[str, Any] = {
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 48,
    "num_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "relative_attention_max_distance": 16,
    "feed_forward_proj": "gated-gelu",  # T5 v1.1
    "dropout_rate": 0.0,
    "tie_word_embeddings": False,
}


def write_tiny_t5(root: str | os.PathLike, seed: int = 0, vocab_size: int = 400) -> Path:
    """A random T5 v1.1-style encoder and a locally trained tokenizer in the official layout:
    ``root/t5-v1_1-xxl/{config.json, tokenizer.json, tokenizer_config.json,
    pytorch_model-0000{1,2}-of-00002.bin, pytorch_model.bin.index.json}``.  Returns ``root``."""
    import torch
    from transformers import T5Config, T5EncoderModel

    from pipeline.generators.magi1.text import CAPTION_MAX_LENGTH, T5_SUBFOLDER

    root = Path(root)
    folder = root / T5_SUBFOLDER
    folder.mkdir(parents=True, exist_ok=True)
    tok = build_local_tokenizer(vocab_size)
    tok.model_max_length = CAPTION_MAX_LENGTH
    tok.save_pretrained(str(folder))
    cfg = T5Config(  # type: ignore[call-arg]  # PretrainedConfig takes it through **kwargs
        vocab_size=len(tok), pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, **TINY_T5_CONFIG
    )
    torch.manual_seed(int(seed))
    model = T5EncoderModel(cfg).eval()
    cfg.architectures = ["T5EncoderModel"]
    (folder / "config.json").write_text(cfg.to_json_string())
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    names = sorted(state)
    half = len(names) // 2
    shard_names = ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]
    weight_map = {}
    for shard, keys in zip(shard_names, (names[:half], names[half:])):
        torch.save({k: state[k] for k in keys}, folder / shard)
        weight_map.update({k: shard for k in keys})
    total = sum(v.numel() * v.element_size() for v in state.values())
    (folder / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    return root


def write_tiny_special_tokens(path: str | os.PathLike, dim: int, seed: int = 0) -> Path:
    """A ``special_tokens.npz`` with the official arrays and shapes (float64, 100 other tokens)."""
    rng = np.random.default_rng(int(seed))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez(
            fh,
            caption_token=rng.normal(0, 0.2, (1, dim)),
            logo_token=rng.normal(0, 0.2, (1, dim)),
            other_tokens=rng.normal(0, 0.2, (100, dim)),
        )
    return path
