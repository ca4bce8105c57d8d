"""Finding and reading V-JEPA 2 weights: official ``.pt`` files and Hugging Face format folders.

Official files (vitl.pt, vith.pt, vitg.pt, vitg-384.pt) hold state dicts under ``encoder``,
``target_encoder`` (the EMA teacher) and ``predictor``, keys possibly prefixed ``module.`` /
``backbone.``. The hub loader reads them non-strictly because they carry a sincos ``pos_embed``
that RoPE models do not use; we tolerate exactly that and fail on anything else missing or extra.
Hugging Face folders (config.json + safetensors) are converted to the official names: fused qkv,
mask tokens as a list, ``encoder.layer.N`` -> ``blocks.N`` and so on.

Nothing here touches the network: only local paths are read.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import PipelineError
from pipeline.rewards.vjepa2.variants import CHECKPOINT_FILES, Arch, ArchError, EncoderArch, PredictorArch, validate

ENV_DIR = "VJEPA_CHECKPOINT_DIR"
HF_CONFIG = "config.json"
HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
WEIGHT_KEYS = ("target_encoder", "encoder")
# Stray sincos tables in RoPE checkpoints (the hub loader's comments name "pos_embed" for both
# parts; the predictor's own attribute is "predictor_pos_embed"): the only keys accepted unused.
STRAY_POS = {"pos_embed", "predictor_pos_embed"}
TOLERATED = {"encoder": STRAY_POS, "predictor": STRAY_POS}
PREFIXES = ("module.", "backbone.")

StateDict = dict[str, torch.Tensor]


class RewardModelError(PipelineError):
    """The reward model files are missing, incomplete, or do not fit the architecture."""


# ---- where ------------------------------------------------------------------------------------


def check_hf_folder(path: Path) -> None:
    looked_for = f"{path}/{HF_CONFIG} and one of {', '.join(f'{path}/{w}' for w in HF_WEIGHTS)}"
    if not path.is_dir():
        raise RewardModelError(
            f"V-JEPA 2 model folder not found: {path} (looked for {looked_for}). "
            "Pass a local Hugging Face format folder; nothing is downloaded."
        )
    missing = [HF_CONFIG] if not (path / HF_CONFIG).is_file() else []
    if not any((path / w).is_file() for w in HF_WEIGHTS):
        missing.append(" or ".join(HF_WEIGHTS))
    if missing:
        present = sorted(p.name for p in path.iterdir())[:20]
        raise RewardModelError(
            f"V-JEPA 2 model folder {path} is incomplete: missing {', '.join(missing)} "
            f"(looked for {looked_for}; folder holds {present})"
        )
    try:
        model_type = json.loads((path / HF_CONFIG).read_text()).get("model_type")
    except (OSError, json.JSONDecodeError) as exc:
        raise RewardModelError(f"cannot read {path / HF_CONFIG}: {exc}") from exc
    if model_type != "vjepa2":
        raise RewardModelError(f"{path / HF_CONFIG} has model_type={model_type!r}, expected 'vjepa2'")


def resolve_checkpoint(
    variant: str, checkpoint: str | os.PathLike | None, env: Mapping[str, str] | None = None
) -> Path:
    """The file (official) or folder (hf) to load; raises listing every place looked at."""
    env = os.environ if env is None else env
    if variant == "hf":
        if not checkpoint:
            raise RewardModelError("reward.variant=hf needs reward.checkpoint=<Hugging Face format folder>")
        folder = Path(checkpoint).expanduser().resolve()
        check_hf_folder(folder)
        return folder
    filename = CHECKPOINT_FILES.get(variant)  # None for custom: the path must name the file
    looked: list[str] = []
    candidates: list[Path] = []
    if checkpoint:
        path = Path(checkpoint).expanduser().resolve()
        if path.is_file():
            return path
        if path.is_dir() and filename:
            candidates.append(path / filename)
        else:
            looked.append(f"{path} (reward.checkpoint: {'no such file' if not path.is_dir() else 'a folder'})")
    else:
        looked.append("reward.checkpoint (not set)")
    env_dir = env.get(ENV_DIR)
    if filename:
        if env_dir:
            candidates.append(Path(env_dir).expanduser().resolve() / filename)
        else:
            looked.append(f"${ENV_DIR} (not set)")
    for cand in candidates:
        if cand.is_file():
            return cand
        looked.append(str(cand))
    what = f"{variant} checkpoint ({filename})" if filename else f"{variant} checkpoint file"
    raise RewardModelError(
        f"no V-JEPA 2 {what} found; looked for: {'; '.join(looked)}. "
        f"Set reward.checkpoint=FILE_OR_FOLDER or ${ENV_DIR}; nothing is downloaded."
    )


# ---- official .pt -----------------------------------------------------------------------------


def _torch_load(path: Path) -> dict[str, Any]:
    # weights_only: a checkpoint cannot run code; mmap: a 15 GB vitg.pt is paged in, not copied.
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):  # legacy (non-zip) files cannot be memory-mapped
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and IO errors all mean "not a loadable checkpoint"
        raise RewardModelError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, dict):
        raise RewardModelError(f"{path} holds a {type(obj).__name__}, expected a dict of state dicts")
    return obj


def strip_prefixes(sd: StateDict) -> StateDict:
    out = {}
    for key, value in sd.items():
        while key.startswith(PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def read_official(path: Path, weights: str = "target_encoder") -> tuple[StateDict, StateDict]:
    """(encoder, predictor) state dicts of an official checkpoint; ``weights`` picks the encoder key."""
    if weights not in WEIGHT_KEYS:
        raise RewardModelError(f"reward.weights={weights!r} is not one of {list(WEIGHT_KEYS)}")
    obj = _torch_load(path)
    for key in (weights, "predictor"):
        if not isinstance(obj.get(key), dict):
            raise RewardModelError(f"{path} has no {key!r} state dict (top-level keys: {sorted(obj)})")
    return strip_prefixes(obj[weights]), strip_prefixes(obj["predictor"])


def load_strict(module: torch.nn.Module, sd: StateDict, part: str, source: Path | str) -> None:
    """Copy ``sd`` into ``module``: every parameter present, nothing extra but the tolerated tables."""
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own) - TOLERATED[part])
    wrong = [
        f"{k}: {tuple(sd[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in sd and tuple(sd[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s) {missing[:8]}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} key(s) {unexpected[:8]}")
    if wrong:
        problems.append(f"shape mismatch (checkpoint vs model) {wrong[:8]}")
    if problems:
        raise RewardModelError(
            f"{source}: {part} weights do not fit the architecture: "
            + "; ".join(problems)
            + " (wrong reward.variant / reward.arch?)"
        )
    # assign: the (memory-mapped) checkpoint tensors become the parameters, no extra copy.
    module.load_state_dict({k: sd[k] for k in own}, strict=True, assign=True)


# ---- Hugging Face folders ---------------------------------------------------------------------


def arch_from_hf_config(cfg: dict[str, Any]) -> Arch:
    act = cfg.get("hidden_act", "gelu")
    if act != "gelu":
        raise ArchError(f"hidden_act={act!r}: only the GELU MLP of the released models is supported")
    geometry = dict(
        img_size=cfg.get("crop_size", 256),
        patch_size=cfg.get("patch_size", 16),
        num_frames=cfg.get("frames_per_clip", 64),
        tubelet_size=cfg.get("tubelet_size", 2),
    )
    common = dict(qkv_bias=cfg.get("qkv_bias", True), norm_eps=cfg.get("layer_norm_eps", 1e-6), **geometry)
    enc = EncoderArch(
        embed_dim=cfg.get("hidden_size", 1024),
        depth=cfg.get("num_hidden_layers", 24),
        num_heads=cfg.get("num_attention_heads", 16),
        mlp_ratio=cfg.get("mlp_ratio", 4.0),
        in_chans=cfg.get("in_chans", 3),
        **common,
    )
    pred = PredictorArch(
        embed_dim=enc.embed_dim,
        predictor_embed_dim=cfg.get("pred_hidden_size", 384),
        depth=cfg.get("pred_num_hidden_layers", 12),
        num_heads=cfg.get("pred_num_attention_heads", 12),
        mlp_ratio=cfg.get("pred_mlp_ratio", 4.0),
        num_mask_tokens=cfg.get("pred_num_mask_tokens", 10),
        **common,
    )
    return validate(Arch("hf", enc, pred))


def _read_safetensors(folder: Path) -> StateDict:
    from safetensors.torch import load_file

    index = folder / HF_WEIGHTS[1]
    if (folder / HF_WEIGHTS[0]).is_file():
        return load_file(folder / HF_WEIGHTS[0])
    shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    out: StateDict = {}
    for shard in shards:
        out.update(load_file(folder / shard))
    return out


_HF_RENAMES = [  # (HF pattern, official replacement), applied in order to the part-local name
    (r"^embeddings\.patch_embeddings\.proj\.", "patch_embed.proj."),
    (r"^embeddings\.predictor_embeddings\.", "predictor_embed."),
    (r"^layer\.(\d+)\.attention\.proj\.", r"{blocks}.\1.attn.proj."),
    (r"^layer\.(\d+)\.", r"{blocks}.\1."),
    (r"^layernorm\.", "{norm}."),
    (r"^proj\.", "predictor_proj."),
]


def _hf_part(sd: StateDict, part: str) -> StateDict:
    names = {
        "encoder": {"blocks": "blocks", "norm": "norm"},
        "predictor": {"blocks": "predictor_blocks", "norm": "predictor_norm"},
    }[part]
    out: StateDict = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        m = re.match(r"^layer\.(\d+)\.attention\.(query|key|value)\.(weight|bias)$", key)
        if m:
            qkv.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = value
            continue
        if key == "embeddings.mask_tokens":  # (num, 1, 1, D) -> mask_tokens.i of (1, 1, D)
            out.update({f"mask_tokens.{i}": t for i, t in enumerate(value)})
            continue
        new = key
        for pattern, repl in _HF_RENAMES:
            new, n = re.subn(pattern, repl.format(**names), new)
            if n:
                break
        out[new] = value
    for (layer, kind), parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            raise RewardModelError(f"HF weights: layer {layer} {kind} lacks one of query/key/value")
        out[f"{names['blocks']}.{layer}.attn.qkv.{kind}"] = torch.cat([parts["query"], parts["key"], parts["value"]])
    return out


def read_hf_arch(folder: Path) -> Arch:
    check_hf_folder(folder)
    try:
        return arch_from_hf_config(json.loads((folder / HF_CONFIG).read_text()))
    except (ArchError, TypeError) as exc:
        raise RewardModelError(f"{folder / HF_CONFIG}: {exc}") from None


def read_hf(folder: Path) -> tuple[Arch, StateDict, StateDict]:
    """Architecture and (encoder, predictor) state dicts, in official names, of a HF folder."""
    arch = read_hf_arch(folder)
    sd = _read_safetensors(folder)
    sd = {k.removeprefix("vjepa2."): v for k, v in sd.items()}  # classification checkpoints nest the model
    parts: dict[str, StateDict] = {"encoder": {}, "predictor": {}}
    unknown = []
    for key, value in sd.items():
        head, _, rest = key.partition(".")
        if head in parts:
            parts[head][rest] = value
        elif head != "pooler":  # the classification head's attentive pooler is not part of the world model
            unknown.append(key)
    if unknown:
        raise RewardModelError(f"{folder}: unexpected HF weight(s) {sorted(unknown)[:8]}")
    return arch, _hf_part(parts["encoder"], "encoder"), _hf_part(parts["predictor"], "predictor")


# ---- writing (tiny model, tests, conversions) -------------------------------------------------


def to_hf_state_dict(encoder_sd: StateDict, predictor_sd: StateDict) -> StateDict:
    """Official names -> Hugging Face names (the inverse of ``read_hf``)."""
    out: StateDict = {}
    for part, sd in (("encoder", encoder_sd), ("predictor", predictor_sd)):
        blocks = "blocks" if part == "encoder" else "predictor_blocks"
        tokens = []
        for key, value in sd.items():
            if key.startswith("mask_tokens."):
                tokens.append((int(key.split(".")[1]), value))
                continue
            m = re.match(rf"^{blocks}\.(\d+)\.attn\.qkv\.(weight|bias)$", key)
            if m:
                for name, chunk in zip(("query", "key", "value"), value.chunk(3)):
                    out[f"{part}.layer.{m.group(1)}.attention.{name}.{m.group(2)}"] = chunk.contiguous()
                continue
            new = re.sub(rf"^{blocks}\.", "layer.", key)
            new = re.sub(r"^layer\.(\d+)\.attn\.proj\.", r"layer.\1.attention.proj.", new)
            new = re.sub(r"^patch_embed\.proj\.", "embeddings.patch_embeddings.proj.", new)
            new = re.sub(r"^predictor_embed\.", "embeddings.predictor_embeddings.", new)
            new = re.sub(r"^(norm|predictor_norm)\.", "layernorm.", new)
            new = re.sub(r"^predictor_proj\.", "proj.", new)
            out[f"{part}.{new}"] = value.contiguous()
        if tokens:
            out["predictor.embeddings.mask_tokens"] = torch.stack([t for _, t in sorted(tokens)])
    return out


def hf_config(arch: Arch) -> dict[str, Any]:
    e, p = arch.encoder, arch.predictor
    if e.use_silu or p.use_silu:
        raise ArchError("the Hugging Face format has no SwiGLU MLP")
    return {
        "model_type": "vjepa2",
        "architectures": ["VJEPA2Model"],
        "crop_size": e.img_size,
        "patch_size": e.patch_size,
        "frames_per_clip": e.num_frames,
        "tubelet_size": e.tubelet_size,
        "in_chans": e.in_chans,
        "hidden_size": e.embed_dim,
        "num_hidden_layers": e.depth,
        "num_attention_heads": e.num_heads,
        "mlp_ratio": e.mlp_ratio,
        "layer_norm_eps": e.norm_eps,
        "qkv_bias": e.qkv_bias,
        "hidden_act": "gelu",
        "pred_hidden_size": p.predictor_embed_dim,
        "pred_num_hidden_layers": p.depth,
        "pred_num_attention_heads": p.num_heads,
        "pred_mlp_ratio": p.mlp_ratio,
        "pred_num_mask_tokens": p.num_mask_tokens,
        "pred_zero_init_mask_tokens": False,
    }
