"""MAGI-1 DiT forward under parallel layouts, side by side in one run: one rank vs tensor
parallelism, Ulysses sequence parallelism and both, each rank one process (gloo on the CPU, NCCL
on GPUs).

    python bench/magi1_parallel.py [--layers 4] [--hidden 512] [--chunks 4] [--size 32]
        [--layouts tp=1 tp=2 sp=2 tp=2,sp=2]
    python bench/magi1_parallel.py --model 4.5b --size 90 --layouts tp=1 sp=8 tp=8 sp=4,tp=2   # 8 GPUs, 720p

Per layout: seconds per forward (median of ``--reps``), tokens/s, the share of rank 0's forward
spent in all-reduce (tensor parallelism) and in all-to-all / all-gather (Ulysses), and the largest
difference from the one-rank output and from its gradient with respect to the latents (the
collectives are differentiable: reward guidance through the model). On the CPU the ranks share the
machine's cores, so this measures the overhead of the split (communication and its bookkeeping),
not a speed-up; each rank runs one thread. On GPUs (``--model 4.5b``: a random 4.5B-size model in
bf16) the MFU column is the forward's matmul FLOPs per second over the measured bf16 matmul rate
of one GPU times the ranks. CFG parallelism splits a step's passes, not a forward:
``tests/magi1/test_parallel.py`` checks it on whole samples.
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

# the profiler's names for collectives and for waiting on them (functional collectives, c10d)
COMM_EVENTS = ("wait_tensor", "c10d::", "_c10d_functional::", "nccl:", "gloo:")


def model_config(a):
    from pipeline.generators.magi1.config import preset, tiny_model_config

    if a.model == "4.5b":
        return preset("4.5b").model_config
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


def worker(rank: int, world: int, port: int, a, layout_text: str, out: str) -> None:
    import torch.distributed as dist
    from torch.profiler import ProfilerActivity, profile

    from bench.magi1 import flops
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
    dtype = torch.bfloat16 if a.model == "4.5b" else None
    model = MagiDiT(cfg, dtype=dtype, device=device) if a.model == "4.5b" else MagiDiT(cfg).init_random_(0).to(device)
    layout = Layout.parse(layout_text, world)
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
    x = args[0].clone().requires_grad_(True)
    if a.model != "4.5b":  # the gradient check is for the small float32 model
        model(x, *args[1:]).pow(2).sum().backward()
    else:
        x.grad = torch.zeros_like(x)
    from pipeline.generators.magi1.ulysses import EXCHANGE

    events = prof.key_averages()
    total = max(sum(e.self_cpu_time_total for e in events), 1)
    comm = sum(e.self_cpu_time_total for e in events if any(k in e.key for k in COMM_EVENTS)) / total
    exchange = sum(e.cpu_time_total for e in events if e.key == EXCHANGE) / total  # Ulysses, waits included

    if rank == 0 and os.environ.get("BENCH_EVENTS"):
        for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:25]:
            print(f"{e.key[:60]:60s} {e.self_cpu_time_total / 1e3:9.1f} ms")
    if rank == 0:
        torch.save(
            {
                "v": v.cpu(),
                "grad": x.grad.cpu(),
                "seconds": statistics.median(times),
                "reduce": max(comm - exchange, 0.0),  # the rest: tensor parallelism's all-reduces
                "exchange": exchange,
                "tokens": a.chunks * tok,
                "flops": flops(cfg, a.chunks, tok, args[-1], 16),
            },
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
    ap.add_argument("--layouts", nargs="+", default=["tp=1", "tp=2", "sp=2"], help="tp=T,sp=S (ranks = T x S)")
    ap.add_argument("--model", choices=["random", "4.5b"], default="random")
    a = ap.parse_args(argv)
    peak = None
    if torch.cuda.is_available():
        from bench.magi1 import matmul_rate

        peak = matmul_rate(torch.device("cuda"))
    from pipeline.generators.magi1.parallelize import Layout

    rows, ref = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for text in a.layouts:
            layout = Layout.parse(text)
            problems = layout.problems(model_config(a)) + (
                ["cfg splits a step, not a forward"] if layout.cfg > 1 else []
            )
            if problems:
                rows.append((text, "-", "-", "-", "-", "-", "-", "; ".join(problems)))
                continue
            out = os.path.join(tmp, "out.pt")
            ranks = layout.replica_size
            mp.spawn(worker, args=(ranks, free_port(), a, text, out), nprocs=ranks, join=True)
            r = torch.load(out)
            ref = (r["v"], r["grad"]) if ref is None else ref
            rows.append(
                (
                    text,
                    f"{r['seconds'] * 1e3:.1f} ms",
                    f"{r['tokens'] / r['seconds']:,.0f}",
                    f"{r['reduce']:.0%}",
                    f"{r['exchange']:.0%}",
                    "-" if peak is None else f"{r['flops'] / r['seconds'] / (peak * layout.replica_size):.0%}",
                    f"{float((r['v'] - ref[0]).abs().max()):.1e}",
                    f"{float((r['grad'] - ref[1]).abs().max() / ref[1].abs().max()):.1e}",
                )
            )
    cfg = model_config(a)
    print(
        f"MAGI-1 DiT, random weights: {cfg.num_layers} layers, hidden {cfg.hidden_size}, {cfg.num_attention_heads} heads, "
        f"{cfg.num_query_groups} KV groups; {a.chunks} chunks of 6x{a.size}x{a.size} latent; "
        f"{'NCCL' if torch.cuda.is_available() else 'gloo, CPU, 1 thread per rank'}"
    )
    head = ("layout", "forward", "tokens/s", "all-reduce", "all-to-all", "MFU", "max |v - v(first)|", "grad rel. diff")
    table = [head, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for i, r in enumerate(table):
        print("  ".join(c.ljust(widths[j]) for j, c in enumerate(r)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
