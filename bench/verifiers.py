"""Verifiers side by side: seconds and peak memory per 5 s clip for V-JEPA 2 surprise, the
GeoPhys-style trajectory verifier and their rank ensemble, on the same clips.

    python bench/verifiers.py [--clips 2] [--fps 24] [--size 448x256] [--repeats 2]

Each verifier runs in a fresh process, so its peak memory is its own: resident memory (max RSS,
less that of a process holding only torch and the clips) on CPU, torch's peak allocation on CUDA.
Weights are random (the architectures are the real ones, sizes as named); time is the best of
``--repeats`` after one warm-up, per clip, decoding excluded (the clips are in memory). CPU rows:
the tiny test models and a real-size DINOv2 ViT-S/14. A CUDA machine adds V-JEPA 2 ViT-g/16 at
256 px (bf16, the reference CLI's 49-frame subsample), GeoPhys on DINOv2 ViT-L/14 at 224 px (bf16,
every frame) and the two as an ensemble: the comparison GeoPhys reports (1.0 s / 2.0 GB against
1.5 s / 9.3 GB).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DINO_SIZES = {  # transformers Dinov2Config fields of the published backbones
    "vits14": {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6, "patch_size": 14},
    "vitl14": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "patch_size": 14},
}


# the V-JEPA 2 row each row is timed against (same size class)
REFERENCE = {
    "vjepa2 tiny 64px": "vjepa2 tiny 64px",
    "geophys tiny 32px": "vjepa2 tiny 64px",
    "ensemble tiny": "vjepa2 tiny 64px",
    "vjepa2 vitg 256px (49 fr)": "vjepa2 vitg 256px (49 fr)",
    "geophys dinov2 vitl14 224px": "vjepa2 vitg 256px (49 fr)",
    "ensemble vitg + vitl14": "vjepa2 vitg 256px (49 fr)",
}


def make_clips(n: int, frames: int, width: int, height: int) -> list[np.ndarray]:
    """Noise with a bright square moving along a parabola (a throw), one per seed."""
    out = []
    for seed in range(n):
        rng = np.random.default_rng(seed)
        clip = rng.integers(0, 60, (frames, height, width, 3), dtype=np.uint8)
        for t in range(frames):
            s = t / max(1, frames - 1)
            x = int(s * (width - 32))
            y = int((height - 32) * (1 - 4 * s * (1 - s)))
            clip[t, y : y + 32, x : x + 32] = 220
        out.append(clip)
    return out


def geophys_scorer(size: str, device: str, dtype, image_size: int):
    import torch
    from transformers import Dinov2Config, Dinov2Model

    from pipeline.rewards.geophys.encoder import FrameEncoder
    from pipeline.rewards.geophys.scorer import TrajectoryScorer
    from pipeline.tiny_models.dinov2 import CONFIG

    fields = CONFIG if size == "tiny" else {**DINO_SIZES[size], "image_size": 518}
    torch.manual_seed(0)
    model = Dinov2Model(Dinov2Config(**fields)).to(device, dtype).eval().requires_grad_(False)
    encoder = FrameEncoder(model, f"random dinov2 {size}", None, "cls", image_size, 1)
    return TrajectoryScorer(encoder, batch_frames=32)


def vjepa_scorer(size: str, device: str, dtype, max_frames):
    from pipeline.rewards.vjepa2.surprise import SurpriseScorer

    if size == "tiny":
        from pipeline.rewards.vjepa2.variants import tiny_arch
        from pipeline.tiny_models.vjepa2 import random_model

        model = random_model(tiny_arch(), seed=0)
    else:
        from reward import random_giant  # bench/reward.py

        model = random_giant(device, dtype)
    return SurpriseScorer(model, max_frames=max_frames, batch_windows=8)


def build(name: str, device: str):
    import torch

    from pipeline.rewards.ensemble.scorer import EnsembleScorer

    half = torch.bfloat16 if device == "cuda" else torch.float32
    builders = {
        "vjepa2 tiny 64px": lambda: vjepa_scorer("tiny", device, torch.float32, None),
        "geophys tiny 32px": lambda: geophys_scorer("tiny", device, torch.float32, 32),
        "ensemble tiny": lambda: EnsembleScorer(
            ["vjepa2", "geophys"], [build("vjepa2 tiny 64px", device), build("geophys tiny 32px", device)]
        ),
        "geophys dinov2 vits14 224px": lambda: geophys_scorer("vits14", device, half, 224),
        "vjepa2 vitg 256px (49 fr)": lambda: vjepa_scorer("vitg", device, half, 49),
        "geophys dinov2 vitl14 224px": lambda: geophys_scorer("vitl14", device, half, 224),
        "ensemble vitg + vitl14": lambda: EnsembleScorer(
            ["vjepa2", "geophys"],
            [build("vjepa2 vitg 256px (49 fr)", device), build("geophys dinov2 vitl14 224px", device)],
        ),
    }
    return builders[name]()


def measure(name: str, clips: list[np.ndarray], repeats: int, device: str) -> dict:
    """Seconds per clip and peak memory of one verifier (runs in its own process)."""
    import torch

    if name == "baseline":
        return {"rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    scorer = build(name, device)
    cuda = device == "cuda"

    def once() -> list:
        records = [r.record() for r in scorer.score_many(clips)]
        if getattr(scorer, "relative", False):
            return scorer.fuse(records)
        return [r["surprise"] for r in records]

    once()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        surprises = once()
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return {
        "seconds_per_clip": best / len(clips),
        "rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "cuda_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "forwards_per_clip": scorer.forwards / ((repeats + 1) * len(clips)),
        "surprises": surprises,
    }


def _child(args) -> dict:
    return measure(*args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=2)
    ap.add_argument("--fps", type=int, default=24)
    ap.add_argument("--size", default="448x256")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()

    import torch

    width, height = map(int, args.size.split("x"))
    frames = 5 * args.fps
    clips = make_clips(args.clips, frames, width, height)
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    names = ["vjepa2 tiny 64px", "geophys tiny 32px", "ensemble tiny", "geophys dinov2 vits14 224px"]
    if cuda:
        names += ["vjepa2 vitg 256px (49 fr)", "geophys dinov2 vitl14 224px", "ensemble vitg + vitl14"]
    else:
        print("no CUDA device: the ViT-g / ViT-L rows need a GPU machine")
    ctx = mp.get_context("spawn")
    rows = {}
    for name in ["baseline", *names]:
        with ctx.Pool(1) as pool:
            rows[name] = pool.apply(_child, ((name, clips, args.repeats, device),))
        if name != "baseline":
            print(f"  {name}: {rows[name]['seconds_per_clip']:.3f} s/clip", flush=True)
    base = rows.pop("baseline")["rss_gib"]

    print(
        f"\n{args.clips} clip(s) of 5 s = {frames} frames at {width}x{height}, {device}, "
        f"{torch.get_num_threads()} CPU threads, best of {args.repeats}"
    )
    head = f"{'verifier':<30} {'s/clip':>8} {'vs vjepa2':>10} {'RSS GiB':>8} {'CUDA GiB':>9} {'fwd/clip':>9}"
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        ref = rows.get(REFERENCE.get(name, ""))
        ratio = "-" if ref is None else f"{ref['seconds_per_clip'] / r['seconds_per_clip']:.2f}x"
        cuda_gib = "-" if r["cuda_gib"] is None else f"{r['cuda_gib']:.2f}"
        print(
            f"{name:<30} {r['seconds_per_clip']:>8.3f} {ratio:>10} {r['rss_gib'] - base:>8.2f} "
            f"{cuda_gib:>9} {r['forwards_per_clip']:>9.0f}"
        )
    print("'vs vjepa2': the V-JEPA 2 row's seconds / this row's, within a size class (tiny with tiny)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
