"""``python -m pipeline cache run_root=DIR [prune=true] [dry_run=true]``: the per-stage caches.

Lists every stage entry under ``<run_root>/cache/`` (``pipeline/stage_cache.py``) with its key,
finished items, size on disk and the run folders that use it, and the candidate pool. ``prune=true``
removes the entries no run folder links to and the pooled candidates no entry holds; with
``dry_run=true`` it only says what it would remove. Delete a run folder first to let its entries go.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.cli.command import compose_command, exit_status, wants_help
from pipeline.errors import ConfigError

USAGE = "python -m pipeline cache run_root=DIR [prune=true] [dry_run=true]"


@dataclass
class CacheCommand:
    run_root: str = "runs"
    prune: bool = False
    dry_run: bool = False


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def render(run_root: Path) -> str:
    from pipeline.stage_cache import CandidatePool, cache_root, entries

    rows = entries(run_root)
    lines = [f"stage caches in {cache_root(run_root)}", f"{'stage':<10}{'key':<18}{'items':>6}{'size':>10}  used by"]
    for e in rows:
        users = ", ".join(str(r.relative_to(run_root)) for r in e.runs) or "(no run: prune removes it)"
        lines.append(f"{e.stage:<10}{e.key:<18}{e.items:>6}{human_size(e.bytes):>10}  {users}")
    pool = CandidatePool(cache_root(run_root))
    videos = pool.videos()
    size = sum(v.stat().st_size for v in videos)
    lines.append(f"candidate pool: {len(videos)} video(s), {human_size(size)}, {len(pool.orphans())} held by no entry")
    return "\n".join(lines)


def run(args: CacheCommand) -> str:
    from pipeline.stage_cache import cache_root, prune

    root = Path(args.run_root)
    if not cache_root(root).is_dir():
        raise ConfigError(f"run_root={root}: no stage caches there ({cache_root(root)} is missing)")
    if not args.prune:
        return render(root)
    gone, orphans = prune(root, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    freed = sum(e.bytes for e in gone) + sum(v.stat().st_size for v in orphans if v.exists())
    lines = [f"{verb} {len(gone)} entr{'y' if len(gone) == 1 else 'ies'} and {len(orphans)} pooled candidate(s)"]
    lines += [f"  {e.stage}/{e.key}  {human_size(e.bytes)}" for e in gone]
    if not args.dry_run:
        lines.append(render(root))
    elif gone or orphans:
        lines.append(f"about {human_size(freed)}; run again without dry_run=true to remove")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv, __doc__):
        return 0
    return exit_status(lambda: print(run(compose_command(CacheCommand, argv, USAGE))))


if __name__ == "__main__":
    sys.exit(main())
