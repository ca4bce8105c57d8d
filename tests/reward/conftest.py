from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.rewards.vjepa2.model import WorldModel, load_world_model
from pipeline.tiny_models.vjepa2 import make_tiny_vjepa2


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny.pt (official layout) and the same weights as a Hugging Face folder."""
    return make_tiny_vjepa2(tmp_path_factory.mktemp("tiny_vjepa2"), seed=0, crop_size=64)


@pytest.fixture(scope="session")
def tiny_model(tiny_dir: Path) -> WorldModel:
    return load_world_model("tiny", tiny_dir)


def random_clip(t: int, h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth-ish random video: noise plus a moving square, so windows differ from each other."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 80, (t, h, w, 3), dtype=np.uint8)
    for i in range(t):
        y, x = (3 * i) % max(1, h - 16), (5 * i) % max(1, w - 16)
        frames[i, y : y + 16, x : x + 16] = 230
    return frames
