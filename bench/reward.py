"""V-JEPA 2 surprise throughput: the batched scorer vs a straightforward per-window loop.

    python bench/reward.py [--frames 49] [--clips 4] [--stride 2] [--batch-windows 32] [--repeats 3]

Same model, same clips, one run: prints clips/s and ms per window for both paths, their ratio, and
the largest difference between their scores. The tiny random model runs everywhere; on a CUDA
machine ViT-g/16 at 256 px (random weights) on 49-frame clips is added, in bf16 and TF32, with
peak GPU memory. Times are the best of ``--repeats`` after one warm-up.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.rewards.vjepa2.model import Source, WorldModel  # noqa: E402
from pipeline.rewards.vjepa2.preprocess import preprocess_clip  # noqa: E402
from pipeline.rewards.vjepa2.surprise import SurpriseScorer  # noqa: E402
from pipeline.rewards.vjepa2.variants import VARIANTS, tiny_arch  # noqa: E402
from pipeline.rewards.vjepa2.windows import token_split  # noqa: E402
from pipeline.tiny_models.vjepa2 import random_model  # noqa: E402


def clips_for(n: int, frames: int, size: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8) for _ in range(n)]


def per_window_loop(
    model: WorldModel, frames: np.ndarray, window: int, ctx_frames: int, stride: int, device: str, dtype: torch.dtype
) -> list[float]:
    """The reference's way: one window at a time, context encoded then predicted, then the target."""
    s = model.img_size
    ctx_ids, tgt_ids = (
        i.to(device) for i in token_split(window, ctx_frames, model.tubelet_size, s // model.patch_size)
    )
    x = preprocess_clip(torch.from_numpy(frames).to(device), s)
    out = []
    with torch.no_grad():
        for start in range(0, len(x) - window + 1, stride):
            w = x[start : start + window][None].to(dtype)
            h = model.encode(w)[:, tgt_ids].float()
            h = F.layer_norm(h, (h.shape[-1],))
            z = model.predict(model.encode(w[:, :ctx_frames]), ctx_ids, tgt_ids).float()
            z = F.layer_norm(z, (z.shape[-1],))
            out.append(float(1 - F.cosine_similarity(z, h, dim=-1).mean()))
    return out


def best_time(fn, repeats: int, cuda: bool) -> tuple[float, object]:
    result = fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = fn()
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, result


def bench(
    label: str, model: WorldModel, clips: list[np.ndarray], args, device: str, dtype: torch.dtype, tf32: bool = False
) -> list[tuple]:
    cuda = device.startswith("cuda")
    scorer = SurpriseScorer(model, stride=args.stride, batch_windows=args.batch_windows, allow_tf32=tf32)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
        torch.cuda.reset_peak_memory_stats()
    t_loop, loop = best_time(
        lambda: [per_window_loop(model, c, 16, 8, args.stride, device, dtype) for c in clips], args.repeats, cuda
    )
    peak_loop = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t_batch, batched = best_time(lambda: scorer.score_many(clips), args.repeats, cuda)
    peak_batch = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    n_win = sum(len(w) for w in loop)
    diff = max(abs(a - b) for r, w in zip(batched, loop) for a, b in zip(r.window_surprises, w))
    return [
        (label, "per-window loop", len(clips) / t_loop, 1000 * t_loop / n_win, 1.0, peak_loop, 0.0),
        (
            label,
            f"batched ({args.batch_windows}/fwd)",
            len(clips) / t_batch,
            1000 * t_batch / n_win,
            t_loop / t_batch,
            peak_batch,
            diff,
        ),
    ]


def random_giant(device: str, dtype: torch.dtype) -> WorldModel:
    with torch.device("meta"):
        model = WorldModel(VARIANTS["vitg"], Source("vitg", "random", "random"))
    model = model.to_empty(device=device)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            else:
                p.normal_(0, 0.02)
    return model.to(dtype).eval().requires_grad_(False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=49)
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("--batch-windows", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--giant-clips", type=int, default=2)
    args = ap.parse_args()

    rows = []
    tiny = random_model(tiny_arch(), seed=0)
    rows += bench("tiny 64px cpu fp32", tiny, clips_for(args.clips, args.frames, 64), args, "cpu", torch.float32)
    if torch.cuda.is_available():
        clips = clips_for(args.giant_clips, args.frames, 256)
        for dtype, tf32, name in ((torch.bfloat16, False, "bf16"), (torch.float32, True, "tf32")):
            giant = random_giant("cuda", dtype)
            rows += bench(f"vitg 256px cuda {name}", giant, clips, args, "cuda", dtype, tf32)
            del giant
            torch.cuda.empty_cache()
    else:
        print("no CUDA device: skipping ViT-g/16 at 256 px (run on a GPU machine for those numbers)")

    print(
        f"\n{args.clips} clip(s) of {args.frames} frames (giant: {args.giant_clips}), window 16 / context 8 / "
        f"stride {args.stride}, {torch.get_num_threads()} CPU threads, best of {args.repeats}"
    )
    head = f"{'model':<22} {'path':<22} {'clips/s':>9} {'ms/window':>10} {'speed-up':>9} {'peak GiB':>9} {'max |Δ|':>9}"
    print(head)
    print("-" * len(head))
    for label, path, cps, ms, ratio, peak, diff in rows:
        peak_text = "-" if peak != peak else f"{peak:.2f}"  # NaN on CPU
        print(f"{label:<22} {path:<22} {cps:>9.3f} {ms:>10.2f} {ratio:>8.2f}× {peak_text:>9} {diff:>9.1e}")


if __name__ == "__main__":
    main()
