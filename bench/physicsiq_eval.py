"""Time the Physics-IQ evaluator against the plain per-frame baseline, side by side.

    python bench/physicsiq_eval.py                    # full set: 66 scenarios, 198 items, 8 fps
    python bench/physicsiq_eval.py --scenarios 6      # first 6 scenarios; also prints 66-scenario extrapolation
    python bench/physicsiq_eval.py --width 960 --height 540 --gen-width 512 --gen-height 288
                                                      # ground truth larger than the generations

Makes (once, cached) a synthetic Physics-IQ dataset with 66 scenarios in the official layout, and
three model folders of 198 generations each (take-2 as the model, the take-1 motion one frame
late, the switch frame held still), at the ground truth's size or, with --gen-width/--gen-height,
resized to a generator's size. The second form is the realistic one: Physics-IQ was filmed in 4K
and generators write 480p-720p, so the ground truth costs the baseline far more than the
generation, and the evaluator's ground-truth cache saves that much more. Then, for each folder in turn, runs
the baseline (bench/physicsiq_naive.py: one process, frame by frame, no cache, mp4v mask round
trip) and the evaluator (pipeline.benchmarks.physicsiq.evaluator, ``--workers`` processes, mask
cache starting empty, so the first folder pays for the ground truth), each in a fresh process,
and prints seconds per folder, peak memory and the speed ratio. The two must give the same score
and byte-identical per-model CSVs; the bench exits non-zero if they do not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FULL_SCENARIOS = 66
MODELS = ("take2", "late", "still")


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "physics-alignment" / "bench"


# --- data -----------------------------------------------------------------------------------------
def make_dataset(cache: Path, width: int, height: int, fps: int) -> Path:
    from pipeline.benchmarks.physicsiq.synthetic import SyntheticParams, generate

    root = cache / f"physicsiq-synthetic-s{FULL_SCENARIOS}-{width}x{height}"
    params = SyntheticParams(scenarios=FULL_SCENARIOS, seed=0, width=width, height=height, fps=(fps,))
    t = time.time()
    generate(root, params)
    print(f"dataset: {root} ({time.time() - t:.1f} s to check/make)", flush=True)
    return root


def make_models(root: Path, cache: Path, fps: int, size: tuple[int, int] | None) -> dict[str, Path]:
    """The three model folders; ``size`` (width, height) resizes the generations (None: as the
    ground truth)."""
    import cv2
    import numpy as np

    from pipeline.benchmarks.physicsiq.contract import write_submission_video
    from pipeline.benchmarks.physicsiq.layout import PhysicsIQDataset
    from pipeline.video_io import read_video

    def fit(frames: np.ndarray) -> np.ndarray:
        if size is None or frames.shape[2:0:-1] == size:
            return frames
        return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])

    ds = PhysicsIQDataset(root)
    tag = "" if size is None else f"-gen{size[0]}x{size[1]}"
    out = {}
    for model in MODELS:
        folder = cache / "models" / f"{root.name}-{fps}fps{tag}" / model
        out[model] = folder
        done = folder / ".complete"
        if done.is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for it in ds:
            dst = folder / f"{it.item_id}_{model}.mp4"
            if model == "take2" and size is None:
                shutil.copy(ds.testing_clip(it, fps, 2), dst)
            elif model == "take2":
                write_submission_video(dst, fit(read_video(ds.testing_clip(it, fps, 2))[0]), fps)
            elif model == "late":  # the true motion one frame late
                frames, _ = read_video(ds.testing_clip(it, fps, 1))
                write_submission_video(dst, fit(np.concatenate([frames[:1], frames[:-1]])), fps)
            else:  # the switch frame held for 5 s
                rgb = cv2.cvtColor(cv2.imread(str(ds.switch_frame(it))), cv2.COLOR_BGR2RGB)
                write_submission_video(dst, fit(np.repeat(rgb[None], 5 * fps, axis=0)), fps)
        done.write_text("ok")
    return out


# --- one timed evaluation in a fresh process --------------------------------------------------------
def child(args) -> None:
    """--_run: evaluate one folder, print one JSON line with time, score and peak memory."""
    from pipeline.benchmarks.physicsiq.layout import PhysicsIQDataset

    ds = PhysicsIQDataset(args.root)
    keep = set(ds.scenarios[: args.scenarios])
    ids = [it.item_id for it in ds if it.scenario in keep]
    t = time.perf_counter()
    if args._run == "naive":
        from bench.physicsiq_naive import evaluate_naive

        comp, csv = evaluate_naive(args.root, args.generated, args.output, item_ids=ids)
        score = comp.score
    else:
        from pipeline.benchmarks.physicsiq.evaluator import evaluate_folder

        res = evaluate_folder(
            args.root, args.generated, args.output, workers=args.workers, mask_cache=args.mask_cache, item_ids=ids
        )
        score, csv = res.score, res.files["csv"]
    seconds = time.perf_counter() - t
    kib = 1024  # ru_maxrss is in KiB on Linux
    print(
        json.dumps(
            {
                "seconds": seconds,
                "score": score,
                "csv": str(csv),
                "peak_main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib,
                "peak_worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib,
            }
        )
    )


def timed(kind: str, root: Path, generated: Path, output: Path, args, mask_cache: Path) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--_run",
        kind,
        "--root",
        str(root),
        "--generated",
        str(generated),
        "--output",
        str(output),
        "--scenarios",
        str(args.scenarios),
        "--workers",
        str(args.workers),
        "--mask-cache",
        str(mask_cache),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode:
        raise SystemExit(f"{kind} evaluation of {generated} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", type=int, default=FULL_SCENARIOS, help="first N scenarios (default: all 66)")
    p.add_argument("--fps", type=int, default=8)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=288)
    p.add_argument("--gen-width", type=int, help="generations' width (default: the ground truth's)")
    p.add_argument("--gen-height", type=int, help="generations' height (default: the ground truth's)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--cache", type=Path, default=default_cache(), help="dataset, model folders, scratch")
    p.add_argument("--_run", choices=("naive", "fast"), help=argparse.SUPPRESS)
    p.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--generated", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--mask-cache", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._run:
        return child(args)
    if not 1 <= args.scenarios <= FULL_SCENARIOS:
        raise SystemExit(f"--scenarios must be in 1..{FULL_SCENARIOS}")

    root = make_dataset(args.cache, args.width, args.height, args.fps)
    if (args.gen_width is None) != (args.gen_height is None):
        raise SystemExit("give both --gen-width and --gen-height, or neither")
    gen_size = (args.gen_width, args.gen_height) if args.gen_width else None
    models = make_models(root, args.cache, args.fps, gen_size)
    gen_tag = f"{gen_size[0]}x{gen_size[1]}" if gen_size else f"{args.width}x{args.height}"
    scratch = args.cache / "runs" / f"{root.name}-{args.fps}fps-gen{gen_tag}-s{args.scenarios}"
    shutil.rmtree(scratch, ignore_errors=True)
    mask_cache = scratch / "mask-cache"  # empty: the first folder builds the ground-truth cache
    n_items = 3 * args.scenarios
    print(
        f"{n_items} items ({args.scenarios} scenarios x 3 views) at {args.fps} fps, ground truth "
        f"{args.width}x{args.height}, generations {gen_tag}, {args.workers} worker(s), "
        f"{os.cpu_count()} CPU(s)",
        flush=True,
    )

    rows, failures = [], []
    for i, model in enumerate(MODELS):
        folder = models[model]
        if args.scenarios != FULL_SCENARIOS:  # a folder holding only the first 3N items
            folder = scratch / "subsets" / model
            folder.mkdir(parents=True)
            for src in sorted(models[model].glob("*.mp4"))[:n_items]:
                os.link(src, folder / src.name)
        naive = timed("naive", root, folder, scratch / "naive", args, mask_cache)
        fast = timed("fast", root, folder, scratch / "fast", args, mask_cache)
        same_csv = Path(naive["csv"]).read_bytes() == Path(fast["csv"]).read_bytes()
        if naive["score"] != fast["score"] or not same_csv:
            failures.append(f"{model}: naive {naive['score']} vs fast {fast['score']}, identical CSV: {same_csv}")
        rows.append((model, "cold" if i == 0 else "warm", naive, fast, same_csv))
        print(f"  {model}: naive {naive['seconds']:.1f} s, fast {fast['seconds']:.1f} s", flush=True)

    scale = FULL_SCENARIOS / args.scenarios
    print()
    head = (
        "| folder | GT cache | naive s | fast s | ratio | naive peak MiB | fast peak MiB (main + per worker) "
        "| score naive | score fast | same CSV |"
    )
    print(head)
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for model, state, nv, fs, same in rows:
        print(
            f"| {model} | {state} | {nv['seconds']:.1f} | {fs['seconds']:.1f} | {nv['seconds'] / fs['seconds']:.1f}x "
            f"| {nv['peak_main_mib']:.0f} | {fs['peak_main_mib']:.0f} + {fs['peak_worker_mib']:.0f} x {args.workers} "
            f"| {nv['score']:.2f} | {fs['score']:.2f} | {'yes' if same else 'NO'} |"
        )
    tn = sum(r[2]["seconds"] for r in rows)
    tf = sum(r[3]["seconds"] for r in rows)
    warm = [r for r in rows if r[1] == "warm"]
    wn, wf = sum(r[2]["seconds"] for r in warm), sum(r[3]["seconds"] for r in warm)
    print(
        f"\nall {len(rows)} folders: naive {tn:.1f} s, fast {tf:.1f} s, ratio {tn / tf:.1f}x; "
        f"warm folders only: ratio {wn / wf:.1f}x"
    )
    print(f"per folder of {n_items} items: naive {tn / len(rows):.1f} s, fast {tf / len(rows):.1f} s (mean)")
    if args.scenarios != FULL_SCENARIOS:
        print(
            f"extrapolated to 66 scenarios (x{scale:.2f}, linear): naive {tn * scale / len(rows):.1f} s and "
            f"fast {tf * scale / len(rows):.1f} s per folder"
        )
    if failures:
        raise SystemExit("fast and naive evaluations differ:\n  " + "\n  ".join(failures))
    print("scores and CSVs identical for every folder")


if __name__ == "__main__":
    main()
