import numpy as np
import pytest

from pipeline.tiny_models.wan import make_tiny_wan_i2v


@pytest.fixture(scope="module", autouse=True)
def _single_torch_thread():
    """The tiny model is overhead-bound; one intra-op thread is as fast and is
    far more robust when the (2-core) machine is shared with other jobs."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_wan_path(tmp_path_factory):
    return make_tiny_wan_i2v(tmp_path_factory.mktemp("ckpt") / "tiny_wan_i2v", seed=0)


@pytest.fixture(scope="session")
def cond64():
    rng = np.random.RandomState(0)
    # smooth-ish image: gradients + noise
    y, x = np.mgrid[0:64, 0:64]
    img = np.stack([x * 4, y * 4, (x + y) * 2], axis=-1) + rng.randint(0, 32, (64, 64, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_gen(path, **kw):
    from pipeline.generators.wan.engine import WanI2VGenerator

    args = dict(
        path=path, width=64, height=64, num_frames=9, fps=16, num_inference_steps=3, guidance_scale=5.0, batch_size=1
    )
    args.update(kw)
    return WanI2VGenerator(**args)


@pytest.fixture(scope="session")
def gen1(tiny_wan_path):
    return make_gen(tiny_wan_path, batch_size=1)


@pytest.fixture(scope="session")
def gen2(tiny_wan_path):
    return make_gen(tiny_wan_path, batch_size=2)
