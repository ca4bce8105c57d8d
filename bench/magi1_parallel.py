"""MAGI-1 DiT forward under parallel layouts, side by side in one run: one rank vs tensor
parallelism over 2 (and 4) ranks, each rank one process (gloo on the CPU, NCCL on GPUs).

    python bench/magi1_parallel.py [--layers 4] [--hidden 512] [--chunks 4] [--size 32]

Per layout: seconds per forward (median of ``--reps``), tokens/s, the share of the forward spent
in collectives (the profiler's all-reduce events on rank 0), and the largest difference from the
one-rank output. On the CPU the ranks share the machine's cores, so this measures the overhead of
the split (communication and its bookkeeping), not a speed-up; each rank runs one thread.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

# the profiler's names for a collective and for waiting on it (functional collectives, gloo, NCCL)
COMM_EVENTS = ("all_reduce", "allreduce", "wait_tensor", "nccl:", "gloo:")


def model_config(a):
    from pipeline.generators.magi1.config import tiny_model_config

    return tiny_model_config(
        num_layers=a.layers,
        hidden_size=a.hidden,
        ffn_hidden_size=4 * a.hidden,
        num_attention_heads=a.hidden // 64,
        num_query_groups=max(1, a.hidden // 256),
        kv_channels=64,
        caption_channels=64,
        caption_max_length=32,
    )


def inputs(cfg, a, device):
    from bench.magi1 import make_inputs

    return make_inputs(cfg, a.chunks, 6, a.size, a.size, device, valid=16)


def worker(rank: int, world: int, port: int, a, out: str) -> None:
    import torch.distributed as dist
    from torch.profiler import ProfilerActivity, profile

    from pipeline.generators.magi1.dit import MagiDiT
    from pipeline.generators.magi1.parallelize import Layout, parallelize

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(rank)
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    cfg = model_config(a)
    model = MagiDiT(cfg).init_random_(0).to(device)
    layout = Layout(tp=world)
    parallelize(model, layout, layout.mesh(device.type))
    args, tok = inputs(cfg, a, device)
    with torch.no_grad():
        v = model(*args)  # warm-up
        times = []
        for _ in range(a.reps):
            dist.barrier()
            started = time.perf_counter()
            v = model(*args)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
            model(*args)
    comm = sum(e.self_cpu_time_total for e in prof.key_averages() if any(k in e.key for k in COMM_EVENTS))
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    if rank == 0:
        torch.save(
            {"v": v.cpu(), "seconds": statistics.median(times), "comm": comm / max(total, 1), "tokens": a.chunks * tok},
            out,
        )
    dist.barrier()
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--size", type=int, default=32, help="latent height and width")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tp", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args(argv)
    from pipeline.generators.magi1.parallelize import Layout

    rows, ref = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for tp in a.tp:
            problems = Layout(tp=tp).problems(model_config(a))
            if problems:
                rows.append((f"tp={tp}", "-", "-", "-", "; ".join(problems)))
                continue
            out = os.path.join(tmp, f"tp{tp}.pt")
            mp.spawn(worker, args=(tp, free_port(), a, out), nprocs=tp, join=True)
            r = torch.load(out)
            ref = r["v"] if ref is None else ref
            diff = float((r["v"] - ref).abs().max())
            rows.append(
                (
                    f"tp={tp}",
                    f"{r['seconds'] * 1e3:.1f} ms",
                    f"{r['tokens'] / r['seconds']:,.0f}",
                    f"{r['comm']:.0%}",
                    f"{diff:.1e}",
                )
            )
    cfg = model_config(a)
    print(
        f"MAGI-1 DiT, random weights: {cfg.num_layers} layers, hidden {cfg.hidden_size}, {cfg.num_attention_heads} heads, "
        f"{cfg.num_query_groups} KV groups; {a.chunks} chunks of 6x{a.size}x{a.size} latent; "
        f"{'NCCL' if torch.cuda.is_available() else 'gloo, CPU, 1 thread per rank'}"
    )
    head = ("layout", "forward", "tokens/s", "in all-reduce", "max |v - v(tp=1)|")
    table = [head, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for i, r in enumerate(table):
        print("  ".join(c.ljust(widths[j]) for j, c in enumerate(r)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
