"""Seconds and peak memory of one guided MAGI-1 forward step next to a plain one, with random
weights at the real sizes: the DiT of ``--variant`` (4.5B by default), the official ViT VAE and a
V-JEPA 2 ViT-g reward.

    python bench/guidance.py                                  # CPU: tiny models, checks the script
    python bench/guidance.py --variant 4.5b --sizes 480x832 720x1280   # on a GPU (bf16)

The session holds one candidate with a full window (4 chunks in flight); each kind of step runs
once to warm up, then once measured; rows: a plain step
(3 CFG passes), a guided step through the clean estimate (+ a differentiable decode of the chunk
nearest to clean, V-JEPA forward and backward over its windows after 8 clean context frames) and
through the model (+ the 3 passes again with grad, blocks recomputed in backward). Memory: CUDA
peak allocated during the step (CPU: the process's peak RSS so far).
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402


def random_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights drawn on the module's own device (a 4.5B model in seconds on a GPU)."""
    g = torch.Generator(device=next(module.parameters()).device).manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g, device=p.device) / math.sqrt(p[0].numel()))
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g, device=p.device))
    return module


def build(variant: str, device: torch.device, dtype: torch.dtype):
    from pipeline.generators.magi1.config import preset
    from pipeline.generators.magi1.dit import MagiDiT
    from pipeline.generators.magi1.vae import TINY_VAE_DDCONFIG, MagiVAE
    from pipeline.generators.magi1.vae_model import ViTVAEConfig
    from pipeline.rewards.vjepa2.model import WorldModel
    from pipeline.rewards.vjepa2.surprise import SurpriseScorer
    from pipeline.rewards.vjepa2.variants import VARIANTS, tiny_arch

    tiny = variant == "tiny"
    magi = preset(variant)
    dit = random_(MagiDiT(magi.model_config, dtype=dtype, device=device))
    vae_cfg = ViTVAEConfig.from_ddconfig(TINY_VAE_DDCONFIG) if tiny else ViTVAEConfig()
    vae = random_(MagiVAE(vae_cfg).to(device, dtype))
    world = random_(WorldModel(tiny_arch() if tiny else VARIANTS["vitg"]).to(device, dtype))
    scorer = SurpriseScorer(world, window_size=16, context_frames=8, stride=4)
    return magi, dit, vae, scorer


class BenchSession:
    """What the guide reads from a session: clean context frames and a differentiable decode."""

    def __init__(self, vae, context: torch.Tensor):
        self.vae, self.context = vae, context

    def recent_frames(self, count: int) -> torch.Tensor:
        return self.context[:, -count:]

    def decode_pixels(self, latent: torch.Tensor) -> torch.Tensor:
        from pipeline.generators.magi1.vae import latents_to_pixels

        return latents_to_pixels(self.vae.decode(latent, tiled=True, scaled=True)).float()


def measure(device, fn):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return time.perf_counter() - started, peak


def rows_for(size: tuple[int, int], models, device, dtype):
    from pipeline.generators.magi1.sampler import SamplerSettings, SamplingSession
    from pipeline.search.guidance.guide import RewardGuide
    from pipeline.search.guidance.spec import GuidanceConfig

    magi, dit, vae, scorer = models
    settings = SamplerSettings.from_magi_config(magi)
    window = settings.window_size
    settings = SamplerSettings(**{**settings.__dict__, "num_steps": window, "kv_offload": False})
    h, w = size[0] // 8, size[1] // 8
    chunks = window + 6  # the window stays full for the 6 steps below (3 kinds, each warmed up once)
    m = magi.model_config
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 16, chunks * settings.chunk_width, h, w, generator=g)
    text = torch.randn(1, chunks, m.caption_max_length, m.caption_channels, generator=g)
    masks = torch.zeros(1, chunks, m.caption_max_length, dtype=torch.int64)
    masks[..., :64] = 1
    session = SamplingSession(dit, settings, noise, text, masks, text, masks, None, device=device)
    for _ in range(window - 1):  # fill the window
        session.step()
    context = torch.randint(0, 256, (1, 8, size[0], size[1], 3), dtype=torch.uint8, device=device)
    bench = BenchSession(vae, context)
    out = []
    variants = [("plain step", None)]
    for gradient in ("clean_estimate", "model"):
        cfg = GuidanceConfig(scale=0.05, frequency=1, gradient=gradient, checkpointing=True)
        variants.append((f"guided ({gradient})", RewardGuide(cfg, bench, scorer, settings.num_steps)))
    for name, guide in variants:
        dit.gradient_checkpointing = vae.gradient_checkpointing = guide is not None
        try:
            session.step(guide)  # warm-up: first allocations, autograd's first graph
            nfe = session.nfe
            seconds, peak = measure(device, lambda guide=guide: session.step(guide))
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            out.append((f"{size[0]}x{size[1]}", name, "OOM", "", ""))
            continue
        out.append((f"{size[0]}x{size[1]}", name, f"{seconds:.2f} s", f"{peak:.1f} GiB", session.nfe - nfe))
    plain = float(out[0][2].split()[0]) if out[0][2] != "OOM" else None
    return [(*r, f"x{float(r[2].split()[0]) / plain:.1f}" if plain and r[2] != "OOM" else "") for r in out]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default=None, help="MAGI-1 preset (default: 4.5b on a GPU, tiny on the CPU)")
    ap.add_argument("--sizes", nargs="+", default=None, help="HxW video sizes (default 480x832 720x1280; CPU 64x64)")
    a = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    variant = a.variant or ("4.5b" if cuda else "tiny")
    sizes = [tuple(int(v) for v in s.split("x")) for s in (a.sizes or (["480x832", "720x1280"] if cuda else ["64x64"]))]
    models = build(variant, device, dtype)
    rows = [("size", "step", "seconds", "peak memory", "NFEs", "vs plain")]
    for size in sizes:
        rows += rows_for(size, models, device, dtype)
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    print(f"MAGI-1 {variant} (random, {str(dtype).removeprefix('torch.')}) on {device}, one candidate, window full")
    for i, r in enumerate(rows):
        print("  ".join(str(c).ljust(widths[j]) for j, c in enumerate(r)))
        if i == 0:
            print("  ".join("-" * x for x in widths))


if __name__ == "__main__":
    main()
