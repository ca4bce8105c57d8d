"""The tiny randomly initialised models the demo and the tests run, one writer per model family,
each in the same format (official files, Hugging Face / diffusers folders) as the real
checkpoints so the same loading code is exercised. Test support: no production module imports it.

    make_tiny_models("checkpoints/tiny")   # python -m pipeline tiny-models
"""

from __future__ import annotations

from pathlib import Path


def make_tiny_models(out: str | Path = "checkpoints/tiny") -> dict[str, Path]:
    from .adapter import make_tiny_wan_adapter
    from .cogvideox import make_tiny_cogvideox
    from .dinov2 import make_tiny_dinov2
    from .magi1 import make_tiny_magi1
    from .vjepa2 import make_tiny_vjepa2
    from .wan import make_tiny_wan_i2v

    out = Path(out)
    return {
        "wan_i2v": Path(make_tiny_wan_i2v(out / "wan_i2v")),
        "wan22_i2v": Path(make_tiny_wan_i2v(out / "wan22_i2v", two_experts=True)),
        "wan_adapter": Path(make_tiny_wan_adapter(out / "wan_adapter")),
        "cogvideox_i2v": Path(make_tiny_cogvideox(out / "cogvideox_i2v")),
        "vjepa2": Path(make_tiny_vjepa2(out / "vjepa2")),
        "magi1": Path(make_tiny_magi1(out / "magi1")),
        "dinov2": Path(make_tiny_dinov2(out / "dinov2")),
    }
