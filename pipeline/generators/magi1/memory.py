"""Per-rank memory of MAGI-1 under a parallel layout, estimated from the configuration alone, so a
layout that cannot fit the GPU is refused before a shard loads anything.

* **weights**: the DiT's parameters in their dtypes (the fp32 "high precision" modules at 4
  bytes, the rest in the compute dtype); the tensor-parallel linears (q, qx, k, v, xattn K/V,
  proj, fc1, fc2) divided by ``tp``, the rest whole on every rank. Exact: what a rank holds.
* **KV cache**: keys and values of every chunk of the video for every layer, ``batch`` rows, this
  rank's KV groups (``G / tp / sp``, at least one: Ulysses replicates groups when ranks outnumber
  them) at all tokens. With ``kv_offload`` it lives in host memory and only the prefix a window
  reads is on the GPU at a time (counted with the activations).
* **activations** of one forward (the largest of a step's passes): the window's chunks plus the
  one just finished, of which this rank holds ``ceil(tok / sp)`` tokens each, through one layer:
  hidden states and their fp32 residuals (six of width D), q/k/v and attention output of this
  rank's heads, the MLP's hidden units of this rank (fc1's output and the SwiGLU product); plus the full-sequence q/k/v/o of the head shard that Ulysses
  gathers and the cached keys a window reads. Autograd is off in sampling, so layers do not
  stack.

The VAE, T5 (on the CPU unless ``t5_device`` says otherwise) and CUDA's own context come on top;
:data:`RESERVE_GB` stands for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import MagiConfig
from .parallelize import Layout

RESERVE_GB = 8.0  # CUDA context, allocator slack, VAE decode of one chunk


@dataclass(frozen=True)
class RankMemory:
    weights: float  # bytes
    kv_cache: float
    activations: float
    host_kv_cache: float

    @property
    def total(self) -> float:
        return self.weights + self.kv_cache + self.activations + RESERVE_GB * 2**30

    def problem(self, layout: Layout, gpu_bytes: int) -> str | None:
        """Why this estimate cannot run on a GPU of ``gpu_bytes`` (None: it fits)."""
        if self.total <= gpu_bytes:
            return None
        return (
            f"MAGI-1 with generator.parallel {layout} needs an estimated {self.total / 2**30:.0f} GB per rank "
            f"({self.describe()}), and the GPU has {gpu_bytes / 2**30:.0f} GB: spread the model over more ranks "
            "(generator.parallel.tp / sp), lower batch_size or the resolution"
        )

    def describe(self) -> str:
        gb = 2**30
        host = f", KV cache in host memory {self.host_kv_cache / gb:.1f} GB" if self.host_kv_cache else ""
        return (
            f"{self.total / gb:.1f} GB per rank: weights {self.weights / gb:.1f} GB, KV cache "
            f"{self.kv_cache / gb:.1f} GB, activations {self.activations / gb:.1f} GB, reserve {RESERVE_GB:.0f} GB{host}"
        )


def tokens_per_chunk(magi: MagiConfig) -> int:
    """DiT tokens of one chunk at the configured video size (VAE: 8x spatial)."""
    r, m = magi.runtime_config, magi.model_config
    h, w = r.video_size_h // 8, r.video_size_w // 8
    return (r.chunk_width // m.t_patch_size) * (h // m.patch_size) * (w // m.patch_size)


def chunks_of_video(magi: MagiConfig, prefix_frames: int = 1) -> int:
    r = magi.runtime_config
    latent = r.num_frames // r.temporal_downsample_factor + prefix_frames
    return math.ceil(latent / r.chunk_width)


def weight_bytes(model_cfg, layout: Layout, dtype_bytes: int) -> float:
    """This rank's share of the DiT's parameters, counted on a model built on the meta device
    (no memory): the tensor-parallel linears divided by ``tp``, the rest whole, each parameter in
    the dtype the model keeps it in."""
    import torch

    from .dit import MagiDiT
    from .parallelize import KV_GROUPED, TP_PLAN

    dtype = {1: torch.float8_e4m3fn, 2: torch.bfloat16, 4: torch.float32}[dtype_bytes]
    model = MagiDiT(model_cfg, dtype=dtype, device="meta")
    total = 0.0
    for name, p in model.named_parameters():
        parts = layout.tp if any(f".{mod}." in name for mod in TP_PLAN) else 1
        if any(f".{mod}." in name for mod in KV_GROUPED):  # fewer groups than ranks: one group each
            parts = min(parts, model_cfg.num_query_groups)
        total += p.numel() * p.element_size() / parts
    return total


def rank_memory(magi: MagiConfig, layout: Layout, dtype_bytes: int, batch: int = 1) -> RankMemory:
    m, r, e = magi.model_config, magi.runtime_config, magi.engine_config
    F, H, G, hd = m.ffn_hidden_size, m.num_attention_heads, m.num_query_groups, m.kv_channels
    D = m.hidden_size
    weights = weight_bytes(m, layout, dtype_bytes)
    groups = max(1, G // layout.tp // layout.sp)
    tok = tokens_per_chunk(magi)
    chunks = chunks_of_video(magi)
    kv = 2 * m.num_layers * batch * groups * chunks * tok * hd * dtype_bytes
    window = r.window_size + 1
    local = batch * window * math.ceil(tok / layout.sp)
    heads = H // layout.tp
    mlp = (3 if m.gated_linear_unit else 2) * (F // layout.tp)  # fc1 out (+ its SwiGLU product)
    per_token = 6 * D * 4 + (4 * heads * hd + mlp) * dtype_bytes
    ulysses = 4 * batch * window * tok * max(1, heads // layout.sp) * hd * dtype_bytes
    keys = 2 * batch * groups * chunks * tok * hd * dtype_bytes  # one layer's cache prefix on the device
    activations = local * per_token + ulysses + keys
    if e.kv_offload:
        return RankMemory(weights, 0.0, activations, kv)
    return RankMemory(weights, kv, activations, 0.0)


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.generators.magi1.memory 24b [--frames 120] [--batch 1]``: the estimate of
    every layout of one 8-GPU node that can split the variant."""
    import argparse

    from .config import preset

    p = argparse.ArgumentParser(prog="python -m pipeline.generators.magi1.memory", description=main.__doc__)
    p.add_argument("variant")
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--gpus", type=int, default=8)
    a = p.parse_args(argv)
    magi = preset(a.variant).replace(runtime_config={"num_frames": a.frames})
    passes = magi.runtime_config.cfg_number
    print(
        f"MAGI-1 {a.variant}, {magi.runtime_config.video_size_w}x{magi.runtime_config.video_size_h}, {a.frames} frames, batch {a.batch}, bf16"
    )
    for cfg in (1, 2, 3):
        for sp in (1, 2, 4, 8):
            for tp in (1, 2, 4, 8):
                layout = Layout(cfg=cfg, sp=sp, tp=tp)
                if layout.replica_size > a.gpus or layout.problems(magi.model_config, passes, tokens_per_chunk(magi)):
                    continue
                print(f"  {str(layout):22s} {rank_memory(magi, layout, 2, a.batch).describe()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
