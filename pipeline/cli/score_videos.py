"""``python -m pipeline score-videos videos=[a.mp4,b.mp4] reward.variant=vitg reward.checkpoint=PATH output=scores.csv``

The reward (V-JEPA 2 surprise by default, or any ``reward=NAME``) of arbitrary videos, outside a
run. A relative verifier (``reward=geophys_*``, an ensemble) ranks the videos given against each
other, as the candidates of one item: its ``surprise`` is the fused rank, its raw values are in
``statistics``. ``videos`` is a list, a folder (its video
files, sorted) or a glob. The reward settings come from the same config group and schema as
``python -m pipeline run`` (conf/reward/, ``reward=GROUP_OPTION``, ``reward.KEY=VALUE``), so a typo
in a key fails the same way. One CSV row per video, in order, with the scoring settings; a video that does
not decode or is shorter than one window gets a row with its error and the others go on.
Exit status: 0 all scored, 3 some rows hold errors, 2 bad arguments or config (one ``error:`` line).
"""

from __future__ import annotations

import csv
import glob
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from pipeline.cli.command import compose_command, exit_status, wants_help
from pipeline.errors import ConfigError
from pipeline.files import atomic_path

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
USAGE = "python -m pipeline score-videos videos=[a.mp4,...]|FOLDER|GLOB [output=scores.csv] [reward.KEY=VALUE ...]"
# Videos decoded, preprocessed and batched together; bounds memory (49 frames at 256 px: ~40 MB each).
CLIPS_PER_CHUNK = 8
SETTING_COLUMNS = (
    "variant",
    "weights",
    "model_path",
    "window_size",
    "context_frames",
    "stride",
    "aggregate",
    "max_frames",
    "crop_size",
    "dtype",
    "mask_index",
)
COLUMNS = (
    "video",
    "surprise",
    "error",
    "num_windows",
    "window_surprises",
    "frames_used",
    "statistics",
    "video_num_frames",
    "video_fps",
    *SETTING_COLUMNS,
)


SOME_ROWS_FAILED = 3  # exit status: the CSV is written, some of its rows are errors


class UsageError(ConfigError):
    """Bad arguments to this command."""


@dataclass
class ScoreVideosCommand:
    # The reward's schema defaults (checkpoint from $VJEPA_CHECKPOINT_DIR) unless reward=NAME picks a
    # YAML of conf/reward/; the tiny random model of the demo is never chosen silently.
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"reward": "schema_vjepa2_surprise"}])
    reward: Any = MISSING
    videos: Any = MISSING  # a list of files, a folder or a glob
    output: str = "scores.csv"


def expand_videos(spec) -> list[Path]:
    items = spec if isinstance(spec, list) else [spec]
    out: list[Path] = []
    for item in map(str, items):
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise UsageError(f"videos: folder {path} holds no video files ({', '.join(VIDEO_SUFFIXES)})")
            out += found
        elif glob.has_magic(item):
            found = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            if not found:
                raise UsageError(f"videos: glob {item!r} matches nothing")
            out += found
        else:
            out.append(path)  # a missing file gets an error row, like a corrupt one
    return out


def rows(scorer, videos: list[Path]) -> list[dict]:
    from pipeline.rewards.base import ScoreFailure

    out = []
    for i in range(0, len(videos), CLIPS_PER_CHUNK):
        chunk = videos[i : i + CLIPS_PER_CHUNK]
        for path, res in zip(chunk, scorer.score_many([str(p) for p in chunk], on_error="record")):
            row = {"video": str(path), **{k: res.settings.get(k) for k in SETTING_COLUMNS}}
            if isinstance(res, ScoreFailure):
                row.update(surprise=None, error=res.error)
            else:
                record = res.record()
                windows = record.get("windows")
                row.update(
                    surprise=record["surprise"],
                    error="",
                    num_windows=None if windows is None else len(windows),
                    window_surprises=None if windows is None else json.dumps(windows),
                    frames_used=record.get("frames_used"),
                    video_num_frames=res.settings.get("video_num_frames"),
                    video_fps=res.settings.get("video_fps"),
                    record=record,
                )
                if "statistics" in record:
                    row["statistics"] = json.dumps(record["statistics"])
            out.append(row)
    if getattr(scorer, "relative", False):
        scored = [r for r in out if not r["error"]]
        for r, fused in zip(scored, scorer.fuse([r["record"] for r in scored])):
            r["surprise"] = fused
    return out


def write_csv(path: Path, table: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in table:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv, __doc__):
        return 0
    return exit_status(lambda: score_videos(compose_command(ScoreVideosCommand, argv, USAGE)))


def score_videos(args: ScoreVideosCommand) -> int:
    """0: every video scored; 3: the CSV holds error rows (the others are scored)."""
    from pipeline.rewards import build_scorer, check_reward, reward_problems

    videos = expand_videos(args.videos)
    bad = reward_problems(args.reward)
    if bad:
        raise ConfigError("; ".join(bad))
    check_reward(args.reward)
    scorer = build_scorer(args.reward)
    table = rows(scorer, videos)
    output = Path(args.output).expanduser()
    write_csv(output, table)
    failed = [r for r in table if r["error"]]
    print(f"scored {len(table) - len(failed)} of {len(table)} videos -> {output}")
    for r in failed:
        print(f"  {r['video']}: {r['error']}", file=sys.stderr)
    return SOME_ROWS_FAILED if failed else 0


if __name__ == "__main__":
    sys.exit(main())
