"""The tiny MAGI-1 and tiny V-JEPA 2 the search tests drive (CPU), and one I2V request."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.generators.base import GenerationRequest
from pipeline.tiny_models.magi1 import make_tiny_magi1
from pipeline.tiny_models.vjepa2 import make_tiny_vjepa2
from tests.magi1.test_engine import tiny_cfg


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    from pipeline.generators import generator_from_config

    folder = make_tiny_magi1(tmp_path_factory.mktemp("magi1") / "magi1")
    # i2v 144 frames: 7 chunks; with a window of 4 chunks, the boundaries after chunks 0, 1 and 2
    # still have a chunk no step has reached (where rows can branch), the later ones do not
    return generator_from_config(tiny_cfg(folder, num_frames=144), device="cpu")


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    from pipeline.rewards.vjepa2.model import load_world_model
    from pipeline.rewards.vjepa2.surprise import SurpriseScorer

    folder = make_tiny_vjepa2(tmp_path_factory.mktemp("vjepa2"), seed=0, crop_size=64)
    return SurpriseScorer(load_world_model("tiny", folder), window_size=16, context_frames=8, stride=4)


@pytest.fixture(scope="module")
def request_():
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return GenerationRequest("a ball rolls off a table", img, 0)
