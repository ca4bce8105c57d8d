"""MAGI-1 DiT forward benchmark.

    python bench/magi1.py            # CPU: tiny configs; GPU (if CUDA): + a random 4.5B-size model
    python bench/magi1.py --gpu-only --size 720 --chunks 4

CPU rows: tokens/s of one forward and the process's peak RSS. GPU rows: a random-weight 4.5B-size
model in bf16 at 720x720 (latent 90x90, 12 150 tokens per 6-frame chunk) with block-causal ranges
over ``--chunks`` chunks, reporting time, tokens/s, peak allocated memory and MFU against the
measured bf16 matmul rate of the same GPU (falls back to fewer chunks / a smaller size on OOM).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from pipeline.generators.magi1.config import preset, tiny_model_config  # noqa: E402
from pipeline.generators.magi1.dit import MagiDiT  # noqa: E402
from pipeline.generators.magi1.schedule import chunk_kv_ranges  # noqa: E402


def make_inputs(cfg, dn, fpc, H, W, device, valid=64, step_indices=None, num_steps=32):
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(1, 16, dn * fpc, H, W, generator=g).to(device)
    t = torch.rand(1, dn, generator=g).to(device)
    L = cfg.caption_max_length
    y = torch.randn(dn, 1, L, cfg.caption_channels, generator=g).to(device)
    mask = torch.zeros(dn, 1, L, dtype=torch.int64)
    mask[..., : min(valid, L)] = 1
    tok = (fpc // cfg.t_patch_size) * (H // cfg.patch_size) * (W // cfg.patch_size)
    steps = step_indices or [num_steps - 8 * (i + 1) for i in range(dn)][:dn]
    steps = [max(0, s) for s in steps]
    kv = chunk_kv_ranges(0, steps, num_steps, [5, 4, 3, 2], 1, tok)
    return (x, t, y, torch.tensor([False], device=device), mask.to(device), kv), tok


def flops(cfg, dn, tok, kv, valid):
    """Matmul FLOPs of one forward (linears + attention scores/values)."""
    D, F, H, G, hd = (
        cfg.hidden_size,
        cfg.ffn_hidden_size,
        cfg.num_attention_heads,
        cfg.num_query_groups,
        cfg.kv_channels,
    )
    S = dn * tok
    per_tok = 2 * H * hd * D + 2 * G * hd * D + 2 * H * hd * D + D * F * (2 if cfg.gated_linear_unit else 1) + F * D
    lin = 2 * S * per_tok * cfg.num_layers
    lin += 2 * dn * cfg.caption_max_length * cfg.xattn_cond_dim * 2 * G * hd * cfg.num_layers  # kv_xattn
    keys = sum(int(e - s) for s, e in kv.tolist())
    attn = 4 * hd * H * tok * (keys + dn * valid) * cfg.num_layers
    emb = 2 * S * D * cfg.in_channels * 4 + 2 * S * D * 4 * cfg.out_channels
    return lin + attn + emb


def time_forward(model, args, device, reps):
    model(*args)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(reps):
        model(*args)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps


def cpu_rows(reps):
    rows = []
    dev = torch.device("cpu")
    for name, cfg in (
        ("tiny 4.5B-shape (GELU)", preset("tiny").model_config),
        (
            "tiny 24B-shape (SwiGLU, 32ch)",
            tiny_model_config(
                gated_linear_unit=True, half_channel_vae=True, in_channels=32, out_channels=32, x_rescale_factor=0.1
            ),
        ),
    ):
        model = MagiDiT(cfg).init_random_(0)
        for dn, H in ((1, 16), (4, 16), (4, 32)):
            args, tok = make_inputs(cfg, dn, 6, H, H, dev, valid=8)
            sec = time_forward(model, args, dev, reps)
            S = dn * tok
            gf = flops(cfg, dn, tok, args[-1], 8) / sec / 1e9
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rows.append(
                (
                    name,
                    f"{dn}x6x{H}x{H}",
                    S,
                    f"{sec * 1e3:.1f} ms",
                    f"{S / sec:,.0f}",
                    f"{gf:.1f} GFLOP/s",
                    f"{rss:.0f} MiB RSS",
                )
            )
    return rows


def matmul_rate(device, n=8192, reps=20):
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def gpu_rows(size, chunks, reps):
    dev = torch.device("cuda")
    peak = matmul_rate(dev)
    cfg = preset("4.5b").model_config
    t0 = time.perf_counter()
    model = MagiDiT(cfg, dtype=torch.bfloat16, device=dev).eval()
    build = time.perf_counter() - t0
    rows = [("bf16 matmul 8192^3", "", "", "", "", f"{peak / 1e12:.0f} TFLOP/s", "")]
    lat = size // 8
    for dn in range(chunks, 0, -1):
        try:
            args, tok = make_inputs(cfg, dn, 6, lat, lat, dev, valid=64)
            sec = time_forward(model, args, dev, reps)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            rows.append(("4.5B random bf16", f"{dn}x6x{lat}x{lat}", "", "OOM", "", "", ""))
            continue
        S = dn * tok
        f = flops(cfg, dn, tok, args[-1], 64)
        mem = torch.cuda.max_memory_allocated() / 2**30
        rows.append(
            (
                f"4.5B random bf16 ({size}x{size})",
                f"{dn}x6x{lat}x{lat}",
                S,
                f"{sec * 1e3:.0f} ms",
                f"{S / sec:,.0f}",
                f"{f / sec / 1e12:.0f} TFLOP/s = MFU {f / sec / peak:.0%}",
                f"{mem:.1f} GiB peak",
            )
        )
    rows.append((f"(model built in {build:.1f} s, {cfg.num_parameters() / 1e9:.2f} B params)", "", "", "", "", "", ""))
    return rows


def print_table(rows):
    head = ("model", "chunks x frames x HxW", "tokens", "forward", "tokens/s", "throughput", "memory")
    rows = [head] + [tuple(str(c) for c in r) for r in rows]
    w = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w[j]) for j, c in enumerate(r)))
        if i == 0:
            print("  ".join("-" * x for x in w))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu-only", action="store_true")
    ap.add_argument("--size", type=int, default=720, help="square video size for the GPU rows")
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "2")))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = []
    if not a.gpu_only:
        rows += cpu_rows(a.reps)
    if torch.cuda.is_available():
        with torch.inference_mode():
            rows += gpu_rows(a.size, a.chunks, a.reps)
        rows.append((f"device: {torch.cuda.get_device_name()}", "", "", "", "", "", ""))
    else:
        print("no CUDA device: skipping the 4.5B-size GPU benchmark", file=sys.stderr)
    print_table(rows)


if __name__ == "__main__":
    main()
