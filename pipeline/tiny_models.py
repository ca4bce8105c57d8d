"""``python -m pipeline.tiny_models [out=checkpoints/tiny]``: the randomly initialised tiny models
the demo and the tests run, written in the same formats (diffusers / Hugging Face folders) as the
real checkpoints so the same loading code is exercised. Idempotent.
"""

from __future__ import annotations

import sys
from pathlib import Path


def make_tiny_models(out: str | Path = "checkpoints/tiny") -> dict[str, Path]:
    from pipeline.generators.magi1.tiny import make_tiny_magi1
    from pipeline.generators.wan.tiny import make_tiny_wan_i2v
    from pipeline.reward.tiny import make_tiny_vjepa2

    out = Path(out)
    return {
        "wan_i2v": Path(make_tiny_wan_i2v(out / "wan_i2v")),
        "vjepa2": Path(make_tiny_vjepa2(out / "vjepa2")),
        "magi1": Path(make_tiny_magi1(out / "magi1")),
    }


def main(argv: list[str]) -> None:
    args = dict(a.split("=", 1) for a in argv)
    unknown = set(args) - {"out"}
    if unknown:
        sys.exit(f"error: unknown argument(s) {sorted(unknown)}; usage: python -m pipeline.tiny_models [out=DIR]")
    for name, path in make_tiny_models(args.get("out", "checkpoints/tiny")).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
