"""A sweep with and without the per-stage caches, side by side, on the demo's tiny models.

The sweep is what a user runs to draw a best-of-N curve and then try another reward: N = 2, 4, 8,
then N = 8 with another reward stride. With the caches every point runs in one run root (candidates
pooled, stages shared); the naive baseline gives every point a fresh run root, so nothing is
shared (what a run key over every field did). Counted per point: candidates generated, generator
NFEs spent in that launch (from the records' attempt compute), wall seconds.

    python bench/sweep_reuse.py [--scenarios 1] [--out /tmp/sweep_reuse]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POINTS = [
    ("N=2", ["search.n=2"]),
    ("N=4", ["search.n=4"]),
    ("N=8", ["search.n=8"]),
    ("N=8, stride 4", ["search.n=8", "reward.stride=4"]),
]


def launch(run_root: Path, extra: list[str], scenarios: int) -> tuple[Path, float]:
    args = [
        sys.executable,
        "-m",
        "pipeline",
        "run",
        "+experiment=demo",
        f"run_root={run_root}",
        f"benchmark.root={ROOT / 'data/physicsiq-synthetic'}",
        f"benchmark.max_scenarios={scenarios}",
        f"generator.checkpoint={ROOT / 'checkpoints/tiny/wan_i2v'}",
        f"reward.checkpoint={ROOT / 'checkpoints/tiny/vjepa2'}",
        "tracking=disabled",
        "tracking.progress=false",
        *extra,
    ]
    started = time.perf_counter()
    res = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if res.returncode != 0:
        raise SystemExit(f"run failed:\n{res.stderr[-2000:]}")
    run_dir = Path(next(line for line in res.stdout.splitlines() if line.startswith("run: ")).split(": ", 1)[1])
    return run_dir, seconds


def spent(run_dir: Path, started: float) -> tuple[int, int]:
    """Candidates generated and NFEs spent by the sample records this launch wrote (a record's
    ``nfe`` also charges the candidates it took from the pool: only the made ones were spent)."""
    made = nfe = 0
    for path in (run_dir / "sample" / "items").glob("*.json"):
        rec = json.loads(path.read_text())
        if rec["started"] < started:
            continue  # reused: nothing spent now
        compute = rec["data"]["compute"]
        n_made, n_pooled = compute.get("candidates_made", 0), compute.get("candidates_pooled", 0)
        made += n_made
        nfe += round(compute["nfe"] * n_made / max(1, n_made + n_pooled))
    return made, nfe


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenarios", type=int, default=1)
    parser.add_argument("--out", default="/tmp/sweep_reuse")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    rows = []
    for k, (label, extra) in enumerate(POINTS):
        row = [label]
        for mode in ("cached", "naive"):
            root = out / "cached" if mode == "cached" else out / f"naive{k}"
            started = time.time()
            run_dir, seconds = launch(root, extra, args.scenarios)
            made, nfe = spent(run_dir, started)
            row += [made, nfe, seconds]
        rows.append(row)
    head = f"{'point':<16}{'made':>6}{'NFEs':>7}{'s':>7}   {'made':>6}{'NFEs':>7}{'s':>7}   {'NFE ratio':>9}"
    print(f"{'':<16}{'with the caches':^20}   {'naive (fresh root)':^20}")
    print(head)
    totals = [0, 0, 0.0, 0, 0, 0.0]
    for r in rows:
        totals = [a + b for a, b in zip(totals, r[1:])]
        ratio = f"{r[5] / r[2]:.1f}x" if r[2] else "inf"
        print(f"{r[0]:<16}{r[1]:>6}{r[2]:>7}{r[3]:>7.1f}   {r[4]:>6}{r[5]:>7}{r[6]:>7.1f}   {ratio:>9}")
    print(
        f"{'sweep':<16}{totals[0]:>6}{totals[1]:>7}{totals[2]:>7.1f}   {totals[3]:>6}{totals[4]:>7}{totals[5]:>7.1f}"
        f"   {totals[4] / max(1, totals[1]):>8.1f}x"
    )


if __name__ == "__main__":
    main()
