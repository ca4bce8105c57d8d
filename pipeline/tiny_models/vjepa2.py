"""A tiny randomly initialised V-JEPA 2, written in both real formats so tests and the demo run the
real loading paths: ``tiny.pt`` (official layout: ``encoder`` / ``target_encoder`` / ``predictor``,
``module.`` prefixes, a stray ``pos_embed``) and a Hugging Face folder (config.json + safetensors)
holding the same target encoder and predictor. Its scores are meaningless; it exercises shapes,
indexing and numerics.

Weights are larger than a trained model's init (std 0.2) so attention is far from uniform: a wrong
RoPE position or token order then moves the outputs by much more than the test tolerances.
Idempotent: a matching ``tiny_params.json`` in a complete folder means nothing is rebuilt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.files import TINY_MARKER, build_folder

TINY_VERSION = 2
PARAMS_FILE = TINY_MARKER
TINY_FILE = "tiny.pt"


def _params(seed: int, crop_size: int) -> dict:
    return {"tiny_version": TINY_VERSION, "seed": int(seed), "crop_size": int(crop_size)}


def _is_complete(out: Path, params: dict) -> bool:
    try:
        if json.loads((out / PARAMS_FILE).read_text()) != params:
            return False
    except (OSError, ValueError):
        return False
    return all((out / f).is_file() for f in (TINY_FILE, "config.json", "model.safetensors"))


def random_model(arch, seed: int = 0, std: float = 0.2):
    """A WorldModel of ``arch`` with seeded random weights (CPU RNG only)."""
    import torch

    from pipeline.rewards.vjepa2.model import Source, WorldModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = WorldModel(arch, Source(arch.name, "random", "random"))
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                # Non-trivial norms and biases too, so a dropped affine would show.
                p.data = (1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn_like(p)
            else:
                p.data = std * torch.randn_like(p)
    return model.eval().requires_grad_(False)


def official_checkpoint(model, online_encoder_seed: int | None = 1, prefix: str = "module.") -> dict:
    """The official file layout for ``model``: its encoder as ``target_encoder`` (and, unless
    ``online_encoder_seed`` is None, a different ``encoder``), prefixed keys and stray pos tables."""
    import torch

    def official(sd: dict, stray: str) -> dict:
        out = {prefix + k: v.clone() for k, v in sd.items()}
        out[prefix + stray] = torch.zeros(1, 4, 3)  # a sincos table RoPE models do not use
        return out

    target = model.encoder.state_dict()
    online = target
    if online_encoder_seed is not None:
        online = random_model(model.arch, seed=online_encoder_seed).encoder.state_dict()
    return {
        "encoder": official(online, "pos_embed"),
        "target_encoder": official(target, "pos_embed"),
        "predictor": official(model.predictor.state_dict(), "predictor_pos_embed"),
        "epoch": 0,
    }


def write_hf_folder(model, out: Path) -> None:
    from safetensors.torch import save_file

    from pipeline.rewards.vjepa2.checkpoints import hf_config, to_hf_state_dict

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(hf_config(model.arch), indent=2))
    save_file(
        to_hf_state_dict(model.encoder.state_dict(), model.predictor.state_dict()), str(out / "model.safetensors")
    )


def make_tiny_vjepa2(out_dir: str | os.PathLike, seed: int = 0, crop_size: int = 64) -> Path:
    params = _params(seed, crop_size)

    def build(tmp: Path) -> None:
        import torch

        from pipeline.rewards.vjepa2.variants import tiny_arch

        model = random_model(tiny_arch(crop_size), seed=seed)
        torch.save(official_checkpoint(model, online_encoder_seed=seed + 1000), tmp / TINY_FILE)
        write_hf_folder(model, tmp)
        (tmp / PARAMS_FILE).write_text(json.dumps(params, indent=2))

    return build_folder(out_dir, build, lambda out: _is_complete(out, params))
