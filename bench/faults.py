"""Fault injection over many trials: a local demo run (one scenario, three items, seven stages) is
killed at random points and rerun, and the run folder is audited from the outside.

    python bench/faults.py [--trials 10] [--seed 0] [--disk]

Faults: kill -9 of the whole process group (1 to 3 times per trial, each at a random point of the
stages' work), SIGTERM and SIGUSR2 to the launcher, and with --disk (root only) a run root on a
tmpfs that fills up, grown afterwards. Each trial ends with a rerun of the same command that must
complete. Printed per fault: trials, faults injected, reruns that completed, items done, items
lost (must be 0), items duplicated (finished, then started again: must be 0), items counted done
with corrupt outputs (must be 0), and the work redone because a kill interrupted it.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faults.audit import audit  # noqa: E402
from tests.faults.conftest import events, finish_run, kill_group, only_run, start_run, wait_until  # noqa: E402

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "physics-alignment" / "bench" / "faults"


@dataclass
class Row:
    fault: str
    trials: int = 0
    injected: int = 0
    completed: int = 0
    done: int = 0
    lost: int = 0
    duplicated: int = 0
    corrupt: int = 0
    redone: int = 0  # attempts started beyond one per item


def inputs() -> tuple[Path, Path]:
    from pipeline.benchmarks.physicsiq.synthetic import SyntheticParams, generate
    from pipeline.tiny_models import make_tiny_models

    data = CACHE / "physics-IQ-benchmark"
    if not (data / "descriptions.csv").exists():
        generate(data, SyntheticParams(scenarios=1, width=128, height=72, fps=(8,)))
    models = CACHE / "models"
    make_tiny_models(models)
    return data, models


def args_for(data: Path, models: Path, run_root: Path) -> list[str]:
    return [
        "+experiment=demo",
        f"benchmark.root={data}",
        f"run_root={run_root}",
        f"generator.checkpoint={models / 'wan_i2v'}",
        f"reward.checkpoint={models / 'vjepa2'}",
        "tracking=disabled",
        "evaluate.workers=1",
        f"evaluate.mask_cache={run_root.parent / 'masks'}",
        "tracking.progress=false",
    ]


def finish_and_audit(args: list[str], run_root: Path, row: Row) -> None:
    res = finish_run(args)
    row.trials += 1
    row.completed += res.returncode == 0
    result = audit(only_run(run_root))
    row.done += result.done
    row.lost += len(result.lost)
    row.duplicated += len(result.duplicated)
    row.corrupt += len(result.corrupt)
    row.redone += result.starts - result.done - len(result.lost)


def kill_trial(args, run_root, rng, row) -> None:
    for _ in range(rng.randint(1, 3)):
        proc = start_run(args)
        target = len(events(run_root)) + rng.randint(1, 16)
        wait_until(
            lambda proc=proc, target=target: proc.poll() is not None or len(events(run_root)) >= target,
            600,
            "progress",
            interval=0.05,
        )
        time.sleep(rng.uniform(0.0, 0.5))
        if proc.poll() is None:
            kill_group(proc, signal.SIGKILL)
            row.injected += 1
        proc.wait()
    finish_and_audit(args, run_root, row)


def signal_trial(args, run_root, rng, row, sig) -> None:
    proc = start_run(args)
    target = rng.randint(1, 20)
    wait_until(
        lambda proc=proc, target=target: proc.poll() is not None or len(events(run_root)) >= target,
        600,
        "progress",
        interval=0.05,
    )
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        row.injected += 1
    proc.communicate(timeout=600)
    finish_and_audit(args, run_root, row)


def disk_trial(args, run_root, rng, row) -> None:
    run_root.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={rng.randint(200, 1000)}k", "tmpfs", str(run_root)], check=True
    )
    try:
        res = finish_run(args)
        row.injected += res.returncode == 2 and "No space left on device" in res.stderr
        subprocess.run(["mount", "-o", "remount,size=64m", str(run_root)], check=True)
        finish_and_audit(args, run_root, row)
    finally:
        subprocess.run(["umount", "-l", str(run_root)], capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10, help="trials per fault")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--disk", action="store_true", help="also fill a tmpfs run root (needs root)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    data, models = inputs()
    faults = {
        "kill -9": kill_trial,
        "SIGTERM": lambda *x: signal_trial(*x, signal.SIGTERM),
        "SIGUSR2": lambda *x: signal_trial(*x, signal.SIGUSR2),
    }
    if a.disk:
        faults["disk full"] = disk_trial
    rows = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        for name, trial in faults.items():
            row = Row(name)
            for k in range(a.trials):
                run_root = Path(tmp) / f"{name.replace(' ', '_')}-{k}" / "runs"
                args = args_for(data, models, run_root)
                trial(args, run_root, rng, row)
                print(
                    f"  {name} trial {k + 1}/{a.trials}: {row.injected} fault(s) so far, lost {row.lost}, "
                    f"duplicated {row.duplicated}, corrupt {row.corrupt}",
                    flush=True,
                )
            rows.append(row)
            shutil.rmtree(Path(tmp), ignore_errors=True)
            Path(tmp).mkdir(exist_ok=True)
    head = (
        f"{'fault':<10}{'trials':>7}{'injected':>10}{'completed':>11}{'items done':>12}{'lost':>6}"
        f"{'duplicated':>12}{'corrupt':>9}{'redone':>8}"
    )
    print(f"\n{head}")
    for r in rows:
        print(
            f"{r.fault:<10}{r.trials:>7}{r.injected:>10}{r.completed:>11}{r.done:>12}{r.lost:>6}"
            f"{r.duplicated:>12}{r.corrupt:>9}{r.redone:>8}"
        )
    print(
        f"\n{sum(r.injected for r in rows)} faults in {sum(r.trials for r in rows)} trials, "
        f"{time.time() - started:.0f} s; 'redone' counts attempts a fault cut short (their work lost, then "
        "done once)."
    )
    bad = sum(r.lost + r.duplicated + r.corrupt for r in rows) + sum(r.trials - r.completed for r in rows)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
