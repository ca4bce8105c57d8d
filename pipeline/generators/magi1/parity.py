"""Parity harness: run our MAGI-1 sampler / VAE on the exact inputs of an official run.

    python -m pipeline.generators.magi1.parity sample --magi-config CONFIG.json --weights DIR \\
        --job JOB.safetensors --out OUT.safetensors [--dtype fp32|bf16] [--special-tokens NPZ]
    torchrun --nproc-per-node N -m pipeline.generators.magi1.parity sample ... --parallel tp=T,sp=S,cfg=C
    python -m pipeline.generators.magi1.parity decode --vae DIR --latent IN.safetensors \\
        --out OUT.safetensors [--dtype bf16|fp32] [--fps 24]
    python -m pipeline.generators.magi1.parity encode --vae DIR --frames IN.safetensors \\
        --out OUT.safetensors [--dtype bf16|fp32] [--fps 24]

``sample``: ``DIR`` holds ``inference_weight/`` (``inference_weight.distill/`` when the config says
``distill: true``) in the official layout; the config's ``load``, ``vae_pretrained`` and
``t5_pretrained`` are ignored and ``num_steps`` comes from the config. ``JOB`` holds

* ``noise`` ``(1, 16, T, H, W)``: the whole initial latent as the official sampler draws it, prefix region
  included: ``T = 6 * ceil((num_frames // 4 + Tp) / 6)``, ``H, W`` = video size / 8;
* ``caption_embs`` ``(1, 1, L, C)`` and ``emb_masks`` ``(1, L)``: what ``generate_per_chunk`` receives;
* optional ``prefix_video`` ``(1, 16, Tp, H, W)``: i2v image / v2v prefix latents (already x 0.18215);
* metadata ``mode`` (t2v | i2v | v2v) and ``num_frames``.

Special tokens are off unless ``--special-tokens`` is given (then PAD_HQ + PAD_DURATION, as run.sh).
``OUT`` holds ``latent``: the clean chunks concatenated along time (before VAE decode; v2v starts
after the prefix, i2v keeps latent frame 0), and metadata ``chunk_frames`` (JSON list).

``--parallel tp=T,sp=S,cfg=C`` (keys optional, default 1; the ranks of the launch are replicas x C x
S x T) runs the same job on a split model (``parallelize.py``; gloo without a GPU); rank 0 writes ``OUT``, with
the same contract as without ``--parallel``.

``decode``: ``IN`` holds ``latent`` ``(1, 16, T, H, W)`` as the DiT sees it; ``OUT`` gets ``frames``
uint8 ``(T', H*8, W*8, 3)`` decoded as the official post-processing of one chunk (tiled, 3-latent-frame
temporal tiles at 24 fps, x*127.5+127.5, clamp, truncate). ``encode``: ``IN`` holds ``frames`` uint8
``(T, H, W, 3)`` (one frame = an i2v image); ``OUT`` gets ``latent`` ``(1, 16, T//4 or 1, H/8, W/8)``,
the posterior mode x 0.18215.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

from pipeline.dtypes import torch_dtype


def run_sample(
    magi_config: str,
    weights: str,
    job: str,
    out: str,
    dtype: str = "fp32",
    special_tokens: str | None = None,
    parallel: str | None = None,
) -> dict:
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    from .checkpoint import load_dit
    from .config import load_magi_config
    from .sampler import SamplerSettings, latent_frames, prefix_chunks, sample
    from .text import SpecialTokenOptions, SpecialTokens, caption_rows, null_caption_rows

    cfg = load_magi_config(magi_config)
    with safe_open(job, framework="pt") as f:
        keys = set(f.keys())
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in keys}
    for k in ("noise", "caption_embs", "emb_masks"):
        if k not in tensors:
            raise SystemExit(f"error: {job} has no tensor {k!r} (has {sorted(keys)})")
    mode = meta.get("mode", "t2v")
    if mode not in ("t2v", "i2v", "v2v"):
        raise SystemExit(f"error: metadata mode={mode!r} (t2v | i2v | v2v)")
    num_frames = int(meta.get("num_frames", cfg.runtime_config.num_frames))
    prefix = tensors.get("prefix_video")
    if (mode == "t2v") != (prefix is None):
        raise SystemExit(f"error: mode={mode} {'needs' if prefix is None else 'takes no'} prefix_video")
    noise = tensors["noise"].float()
    r = cfg.runtime_config
    tp = 0 if prefix is None else int(prefix.shape[2])
    T = latent_frames(num_frames, tp, r.chunk_width, r.temporal_downsample_factor)
    want = (1, 16, T, r.video_size_h // 8, r.video_size_w // 8)
    if tuple(noise.shape) != want:
        raise SystemExit(
            f"error: noise is {tuple(noise.shape)}, expected {want} "
            f"(num_frames={num_frames}, prefix frames={tp}, video size {r.video_size_h}x{r.video_size_w})"
        )
    rank = 0
    if parallel is not None:
        from .memory import tokens_per_chunk
        from .parallelize import Layout, init_distributed

        rank, world = init_distributed()
        try:
            layout = Layout.parse(parallel, world)
        except ValueError as e:
            raise SystemExit(f"error: {e}") from None
        problems = layout.problems(cfg.model_config, r.cfg_number, tokens_per_chunk(cfg))
        if problems:
            raise SystemExit("error: " + "; ".join(problems))
    mesh = cfg_split = None
    if parallel is not None and layout.replica_size > 1:
        from .cfg_parallel import CfgSplit

        mesh = layout.mesh("cuda" if torch.cuda.is_available() else "cpu")
        cfg_split = CfgSplit(mesh["cfg"]) if layout.cfg > 1 else None
    model = load_dit(weights, cfg, dtype=torch_dtype(dtype), cache=False, mesh=mesh)
    null = model.y_embedder.null_caption_embedding.detach().float().cpu()
    nch = T // r.chunk_width
    st = SpecialTokens.from_npz(special_tokens) if special_tokens else None
    opts = SpecialTokenOptions() if special_tokens else SpecialTokenOptions.none()
    ne, nm = null_caption_rows(null, nch, special_tokens=st, options=opts)
    embs, masks = tensors["caption_embs"].float(), tensors["emb_masks"].to(torch.int64)
    if int(masks.sum()) == 0:  # official: an empty caption uses null rows in both halves
        te, tm = ne, nm
    else:
        te, tm = caption_rows(
            embs,
            masks,
            nch,
            special_tokens=st,
            options=opts,
            clean_chunks=prefix_chunks(tp, r.chunk_width),
            null_caption_embedding=null,
        )
    res = sample(
        model,
        SamplerSettings.from_magi_config(cfg),
        noise,
        te,
        tm,
        ne,
        nm,
        None if prefix is None else prefix.float(),
        cfg_split=cfg_split,
    )
    latent = res.latent.float().cpu().contiguous()
    held = sum((p.to_local() if hasattr(p, "to_local") else p).nbytes for p in model.parameters())
    info = {
        "rank": rank,
        "weights_mb": round(held / 2**20, 1),  # this rank's share of the DiT
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "chunk_frames": [int(c.shape[2]) for c in res.chunks],
        "forward_steps": res.forward_steps,
        "model_calls": res.model_calls,
        "mode": mode,
        "num_frames": num_frames,
    }
    if rank == 0:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        save_file({"latent": latent}, out, metadata={k: json.dumps(v) for k, v in info.items()})
    return info


def _vae(path: str, dtype: str, fps: int):
    from .vae import MagiVAE

    return MagiVAE.from_folder(path, dtype=torch_dtype(dtype), fps=fps)


def run_decode(vae: str, latent: str, out: str, dtype: str = "bf16", fps: int = 24) -> tuple:
    import torch
    from safetensors.torch import load_file, save_file

    z = load_file(latent)["latent"].float()
    frames = _vae(vae, dtype, fps).decode_to_uint8(z)[0]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_file({"frames": torch.from_numpy(frames).contiguous()}, out)
    return tuple(frames.shape)


def run_encode(vae: str, frames: str, out: str, dtype: str = "bf16", fps: int = 24) -> tuple:
    from safetensors.torch import load_file, save_file

    x = load_file(frames)["frames"]
    z = _vae(vae, dtype, fps).encode(x).float().contiguous()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_file({"latent": z}, out)
    return tuple(z.shape)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.generators.magi1.parity",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample", help="run the sampler on an official job")
    s.add_argument("--magi-config", required=True)
    s.add_argument("--weights", required=True)
    s.add_argument("--job", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    s.add_argument("--special-tokens", default=None)
    s.add_argument("--parallel", default=None, help="tp=T,sp=S,cfg=C: split the model over the launch's ranks")
    for name, inp in (("decode", "--latent"), ("encode", "--frames")):
        d = sub.add_parser(name)
        d.add_argument("--vae", required=True)
        d.add_argument(inp, required=True)
        d.add_argument("--out", required=True)
        d.add_argument("--dtype", default="bf16", choices=["fp32", "bf16"])
        d.add_argument("--fps", type=int, default=24)
    a = p.parse_args(argv)
    if a.cmd == "sample":
        info = run_sample(a.magi_config, a.weights, a.job, a.out, a.dtype, a.special_tokens, a.parallel)
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()  # every rank done (rank 0 has written) before any tears the group down
            dist.destroy_process_group()
        print(
            f"rank {info['rank']}: latent: {a.out} chunks {info['chunk_frames']} ({info['forward_steps']} forward "
            f"steps, {info['model_calls']} DiT calls); DiT weights held {info['weights_mb']} MB, "
            f"peak RSS {info['peak_rss_mb']} MB"
        )
    elif a.cmd == "decode":
        print(f"frames: {a.out} {run_decode(a.vae, a.latent, a.out, a.dtype, a.fps)}")
    else:
        print(f"latent: {a.out} {run_encode(a.vae, a.frames, a.out, a.dtype, a.fps)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
