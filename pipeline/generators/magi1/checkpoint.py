"""Official MAGI-1 DiT checkpoints: folder layout, validation, memory-mapped loading, and a writer
for tiny random models in the same layout.

Layout (``runtime_config.load``)::

    <load>/inference_weight/              base
    <load>/inference_weight.distill/      distill
    <load>/inference_weight.fp8.distill/  fp8 + distill (detected; not supported yet)
        model.safetensors.index.json + shards   (or one model.safetensors)

Keys are the official ``VideoDiTModel`` state-dict names (``x_embedder.weight``, ``rope.bands``,
``videodit_blocks.layers.{i}....``), which :class:`~.dit.MagiDiT` uses verbatim.

Loading builds the model on the ``meta`` device, then reads every tensor with ``safe_open``
(memory-mapped) straight to the target device and the dtype of the official layout (fp32 for
embedders and promoted norms, the model dtype elsewhere), module by module, so peak host memory is
about one tensor. A loaded model is cached per (folder, device, dtype) for the life of the process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from pipeline.model_cache import resident
from pipeline.weight_files import truncated_weights

from ..base import GeneratorLoadError
from .config import MagiConfig, MagiModelConfig

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
FP8_DTYPES = ("F8_E4M3", "F8_E5M2")


class Magi1CheckpointError(GeneratorLoadError):
    """The MAGI-1 checkpoint folder is missing, partial or does not match the architecture."""


class Magi1NotSupportedError(Magi1CheckpointError):
    """The checkpoint is a kind this implementation does not load yet (fp8)."""


def weight_subdir(distill: bool = False, fp8: bool = False) -> str:
    name = "inference_weight"
    if fp8:
        name += ".fp8"
    if distill:
        name += ".distill"
    return name


_FP8_MSG = (
    "fp8-quantized MAGI-1 weights ({where}) are not supported yet; use the bf16 "
    "'inference_weight' (base) or 'inference_weight.distill' checkpoint"
)


def resolve_weight_dir(load: str | os.PathLike, distill: bool = False, fp8: bool = False) -> Path:
    """The folder holding the safetensors: ``load`` itself if it holds them, else the official
    sub-folder for (distill, fp8). Raises for fp8 and for a missing folder."""
    root = Path(load)
    if fp8:
        raise Magi1NotSupportedError(_FP8_MSG.format(where=root / weight_subdir(distill, True)))
    if (root / INDEX_NAME).is_file() or (root / SINGLE_NAME).is_file():
        if ".fp8" in root.name:
            raise Magi1NotSupportedError(_FP8_MSG.format(where=root))
        return root
    if not root.is_dir():
        raise Magi1CheckpointError(f"MAGI-1 checkpoint folder {root} does not exist")
    sub = root / weight_subdir(distill)
    if not sub.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.name.startswith("inference_weight"))
        hint = f"; found {present}" if present else ""
        if not distill and "inference_weight.distill" in present:
            hint += " (a distill checkpoint: set distill=true)"
        if any(".fp8" in p for p in present) and not [p for p in present if ".fp8" not in p]:
            raise Magi1NotSupportedError(_FP8_MSG.format(where=root / present[0]))
        raise Magi1CheckpointError(f"MAGI-1 checkpoint {root} has no {sub.name}/ folder{hint}")
    return sub


def read_weight_map(weight_dir: Path) -> dict[str, str]:
    """key -> shard file name, from the index (or the single file's header)."""
    idx = weight_dir / INDEX_NAME
    if idx.is_file():
        try:
            wm = json.loads(idx.read_text())["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise Magi1CheckpointError(f"{idx} is not a valid safetensors index: {e}") from None
        if not isinstance(wm, dict) or not wm:
            raise Magi1CheckpointError(f"{idx} has an empty weight_map")
        return dict(wm)
    single = weight_dir / SINGLE_NAME
    if single.is_file():
        from safetensors import safe_open

        with safe_open(str(single), framework="pt") as f:
            return {k: SINGLE_NAME for k in f.keys()}
    raise Magi1CheckpointError(f"{weight_dir} has neither {INDEX_NAME} nor {SINGLE_NAME}")


def missing_checkpoint_files(load: str | os.PathLike, distill: bool = False, fp8: bool = False) -> list[str]:
    """What the folder lacks (empty list = looks complete); cheap: no tensor is read."""
    try:
        wd = resolve_weight_dir(load, distill, fp8)
    except Magi1CheckpointError as e:
        return [str(e)]
    idx = wd / INDEX_NAME
    if not idx.is_file():
        if not (wd / SINGLE_NAME).is_file():
            return [f"{wd}/{INDEX_NAME} (or {SINGLE_NAME})"]
        shards = [SINGLE_NAME]
    else:
        try:
            shards = sorted(set(read_weight_map(wd).values()))
        except Magi1CheckpointError as e:
            return [str(e)]
    out = []
    for s in shards:
        if not (wd / s).is_file():
            out.append(
                f"{wd}/{s}"
                + (
                    " (only a .zst copy: zstd-compressed shards are not supported; run `zstd -d`)"
                    if (wd / (s + ".zst")).is_file()
                    else ""
                )
            )
        elif why := truncated_weights(wd / s):
            out.append(f"{wd}/{s} (truncated: {why})")
    return out


def check_weights(model, weight_dir: Path, weight_map: dict | None = None) -> dict[str, str]:
    """Raise a clear error unless ``weight_dir`` holds exactly the model's parameters with the right
    shapes (and no fp8 tensors). Returns the weight map."""
    from safetensors import safe_open

    wm = weight_map if weight_map is not None else read_weight_map(weight_dir)
    shards = sorted(set(wm.values()))
    absent = [
        s + (" (only a .zst copy: decompress it with `zstd -d`)" if (weight_dir / (s + ".zst")).is_file() else "")
        for s in shards
        if not (weight_dir / s).is_file()
    ]
    if absent:
        raise Magi1CheckpointError(f"MAGI-1 checkpoint {weight_dir} is partial: missing shard(s) " + ", ".join(absent))
    params = dict(model.named_parameters())
    missing = sorted(set(params) - set(wm))
    unexpected = sorted(set(wm) - set(params))
    fp8_like = [k for k in unexpected if k.endswith(("weight_scale", "input_scale", "smooth_scale"))]
    if fp8_like:
        raise Magi1NotSupportedError(_FP8_MSG.format(where=weight_dir) + f" (keys like {fp8_like[0]})")
    if missing or unexpected:

        def short(keys):
            return ", ".join(keys[:20]) + (f", ... ({len(keys)} in all)" if len(keys) > 20 else "")

        msg = f"MAGI-1 checkpoint {weight_dir} does not match the architecture"
        if missing:
            msg += f"; missing keys: {short(missing)}"
        if unexpected:
            msg += f"; unexpected keys: {short(unexpected)}"
        raise Magi1CheckpointError(msg)
    bad = []
    for shard in shards:
        with safe_open(str(weight_dir / shard), framework="pt") as f:
            for k in f.keys():
                if k not in params or wm.get(k) != shard:
                    continue
                sl = f.get_slice(k)
                if sl.get_dtype() in FP8_DTYPES:
                    raise Magi1NotSupportedError(_FP8_MSG.format(where=weight_dir) + f" ({k} is {sl.get_dtype()})")
                if tuple(sl.get_shape()) != tuple(params[k].shape):
                    bad.append(f"{k}: checkpoint {tuple(sl.get_shape())} vs model {tuple(params[k].shape)}")
    listed = {k for s in shards for k in _keys_of(weight_dir / s)}
    not_in_shard = sorted(k for k in params if k not in listed)
    if not_in_shard:
        raise Magi1CheckpointError(
            f"MAGI-1 checkpoint {weight_dir}: keys listed in the index but absent from "
            f"their shard: {', '.join(not_in_shard[:20])}"
        )
    if bad:
        raise Magi1CheckpointError(
            f"MAGI-1 checkpoint {weight_dir} has wrong shapes (is the model_config the "
            "right variant?): " + "; ".join(bad[:10])
        )
    return wm


def _keys_of(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return list(f.keys())


def _set_param(model: torch.nn.Module, name: str, value: torch.Tensor) -> None:
    mod_name, _, pname = name.rpartition(".")
    mod = model.get_submodule(mod_name) if mod_name else model
    mod._parameters[pname] = torch.nn.Parameter(value, requires_grad=False)


def load_dit(
    load: str | os.PathLike,
    model_config: MagiModelConfig | MagiConfig,
    *,
    distill: bool = False,
    fp8: bool = False,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    cache: bool = True,
    mesh=None,
):
    """Build :class:`~.dit.MagiDiT` and load an official checkpoint into it (see module doc).

    ``model_config`` may be a whole :class:`MagiConfig`; then ``distill``/``fp8`` come from its
    ``engine_config``. ``dtype`` defaults to ``params_dtype``. With ``cache`` the same folder,
    device and dtype return the same model object for the whole process. ``mesh`` (dims as
    ``parallelize.Layout.mesh``): the model is parallelized on the meta device first and each rank reads only its slices
    of the split weights (a 24B rank never holds the whole model); never cached."""
    from safetensors import safe_open

    from .dit import MagiDiT

    if isinstance(model_config, MagiConfig):
        distill = model_config.engine_config.distill
        fp8 = model_config.engine_config.fp8_quant
        model_config = model_config.model_config
    wd = resolve_weight_dir(load, distill, fp8)
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    dt = dtype or getattr(torch, model_config.torch_dtype_name)
    idx = wd / INDEX_NAME
    stamp = (idx if idx.is_file() else wd / SINGLE_NAME).stat().st_mtime_ns
    key = (str(wd.resolve()), stamp, str(dev), str(dt), model_config)

    def build() -> MagiDiT:
        model = MagiDiT(model_config, dtype=dt, device="meta")
        wm = check_weights(model, wd)
        params = dict(model.named_parameters())
        if mesh is not None:
            from .parallelize import Layout, local_reads, parallelize

            parallelize(model, Layout.of_mesh(mesh), mesh)
            params = dict(model.named_parameters())
        by_shard: dict[str, list[str]] = {}
        for name in params:
            by_shard.setdefault(wm[name], []).append(name)
        for shard, names in by_shard.items():
            with safe_open(str(wd / shard), framework="pt", device=str(dev)) as f:
                for name in names:
                    reads = None if mesh is None else local_reads(name, params[name], model_config)
                    if reads is None:
                        value = f.get_tensor(name)
                        if mesh is not None and hasattr(params[name], "placements"):  # replicated DTensor
                            value = _dtensor(value, params[name])
                    else:
                        piece = f.get_slice(name)
                        value = _dtensor(torch.cat([piece[index] for index in reads]), params[name])
                    _set_param(model, name, value.to(model.param_dtype(name)))
        left = [n for n, p in model.named_parameters() if (p.to_local() if hasattr(p, "to_local") else p).is_meta]
        if left:  # pragma: no cover - guarded by check_weights
            raise Magi1CheckpointError(f"parameters not loaded: {left[:10]}")
        return model.eval()

    return resident(("magi1.dit", *key), build) if cache and mesh is None else build()


def _dtensor(local: torch.Tensor, like):
    """``local`` as this rank's part of a DTensor placed like parameter ``like``."""
    from torch.distributed.tensor import DTensor

    return DTensor.from_local(local, like.device_mesh, like.placements, run_check=False)


# ----------------------------------------------------------------------------- writing
def write_official_checkpoint(
    model_or_state: torch.nn.Module | dict,
    load: str | os.PathLike,
    *,
    distill: bool = False,
    num_shards: int = 2,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``<load>/inference_weight[.distill]/`` with ``model.safetensors.index.json`` and
    ``num_shards`` shards ``model-0000k-of-0000n.safetensors`` under the official key names.
    ``dtype`` casts floating tensors (default: keep each tensor's dtype). Returns the weight dir."""
    from safetensors.torch import save_file

    state = model_or_state.state_dict() if isinstance(model_or_state, torch.nn.Module) else dict(model_or_state)
    wd = Path(load) / weight_subdir(distill)
    wd.mkdir(parents=True, exist_ok=True)
    keys = list(state)
    n = max(1, min(int(num_shards), len(keys)))
    sizes = [state[k].numel() * state[k].element_size() for k in keys]
    target = sum(sizes) / n
    groups: list[list[str]] = [[]]
    acc = 0.0
    for k, s in zip(keys, sizes):
        if acc >= target * len(groups) and len(groups) < n:
            groups.append([])
        groups[-1].append(k)
        acc += s
    while len(groups) < n:  # tiny states: split the largest group
        big = max(groups, key=len)
        half = len(big) // 2
        groups.insert(groups.index(big) + 1, big[half:])
        del big[half:]
    weight_map, total = {}, 0
    for i, g in enumerate(groups):
        fname = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        part = {}
        for k in g:
            t = state[k].detach().to("cpu")
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
            part[k] = t.contiguous()
            total += t.numel() * t.element_size()
            weight_map[k] = fname
        save_file(part, str(wd / fname), metadata={"format": "pt"})
    (wd / INDEX_NAME).write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2, sort_keys=True)
    )
    return wd
