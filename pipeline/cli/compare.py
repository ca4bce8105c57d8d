"""``python -m pipeline compare runs=[DIR,DIR,...] out=DIR`` or ``sweep=NAME [run_root=runs]``: finished
runs side by side.

One row per run with only the settings that differ, the Physics-IQ scores (Original and the
Verified formula, with components), the mean chosen surprise and the compute, saved as
``compare.csv`` and ``compare.parquet``; the best-of-N curve with bootstrap error bars from the
candidates of one best-of-N run (``bon_run=DIR``; default: the one with the largest N >= 2;
``draws`` per N, seeded by ``seed``); plots per category, surprise against Physics-IQ per item,
score against compute; and ``index.html`` linking each run's report. ``out`` defaults to
``<run_root>/sweeps/<sweep>/`` for a sweep.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.cli.command import compose_command, exit_status, wants_help
from pipeline.errors import ConfigError
from pipeline.fields import at_least, setting

USAGE = "python -m pipeline compare runs=[DIR,DIR] out=DIR | sweep=NAME [run_root=runs] [bon_run=DIR] [draws=100]"


@dataclass
class CompareCommand:
    runs: list[str] = field(default_factory=list)
    sweep: str | None = None
    run_root: str = "runs"
    out: str | None = None
    bon_run: str | None = None
    draws: int = setting(100, check=at_least(1))
    seed: int = setting(0, check=at_least(0))
    workers: int = setting(1, check=at_least(1))  # evaluator processes for the candidate pool
    plots: bool = True


def run(args: CompareCommand):
    from pipeline import sweeps
    from pipeline.compare import compare

    if bool(args.runs) == bool(args.sweep):
        raise ConfigError(f"give either runs=[...] or sweep=NAME; usage: {USAGE}")
    if args.sweep:
        run_dirs = [p["run_dir"] for p in sweeps.points(args.run_root, args.sweep)]
        out = Path(args.out) if args.out else sweeps.sweep_file(args.run_root, args.sweep).with_suffix("")
        title = f"sweep {args.sweep}"
    else:
        if not args.out:
            raise ConfigError(f"out=DIR is required with runs=[...]; usage: {USAGE}")
        run_dirs, out, title = list(args.runs), Path(args.out), f"{len(args.runs)} runs"
    return compare(
        run_dirs,
        out,
        title,
        bon_run=args.bon_run,
        draws=args.draws,
        seed=args.seed,
        workers=args.workers,
        plots=args.plots,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv, __doc__):
        return 0
    return exit_status(lambda: print(run(compose_command(CompareCommand, argv, USAGE)).text()))


if __name__ == "__main__":
    sys.exit(main())
