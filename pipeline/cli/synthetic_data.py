"""``python -m pipeline synthetic-data out=DIR [scenarios=4] [seed=0] [width=256] [height=144]
[fps=[8,16]]``: a small synthetic Physics-IQ dataset in the official layout (the demo's default
benchmark; see ``pipeline/benchmarks/physicsiq/synthetic.py``). Idempotent.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import MISSING

from pipeline.cli.command import compose_command, exit_status, wants_help
from pipeline.fields import at_least, setting


@dataclass
class SyntheticDataCommand:
    out: str = MISSING
    scenarios: int = setting(4, check=at_least(1))
    seed: int = 0
    width: int = setting(256, check=at_least(16))
    height: int = setting(144, check=at_least(16))
    fps: list[int] = field(default_factory=lambda: [8, 16])  # besides the 30 FPS the dataset always has


def main(argv: list[str] | None = None) -> int:
    from pipeline.benchmarks.physicsiq.synthetic import SyntheticParams, generate

    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv, __doc__):
        return 0

    def body() -> None:
        args = compose_command(SyntheticDataCommand, argv, "python -m pipeline synthetic-data out=DIR")
        params = SyntheticParams(
            scenarios=args.scenarios, seed=args.seed, width=args.width, height=args.height, fps=tuple(args.fps)
        )
        generate(Path(args.out), params)
        print(
            f"synthetic Physics-IQ dataset ready at {args.out} ({params.scenarios} scenarios, "
            f"{params.width}x{params.height}, fps {list(params.fps)} + 30)"
        )

    return exit_status(body)


if __name__ == "__main__":
    sys.exit(main())
