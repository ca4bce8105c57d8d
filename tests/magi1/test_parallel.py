"""MAGI-1 across ranks (torchrun, gloo on the CPU): under each layout the sampler makes what one
process makes, on tiny official-layout checkpoints, for t2v, i2v, v2v, the distilled path and the
24B-shaped model (SwiGLU, half-channel VAE); a layout that cannot split the model is refused."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from pipeline.generators.magi1.config import preset
from pipeline.generators.magi1.parallelize import Layout
from pipeline.tiny_models.magi1 import make_tiny_checkpoint
from tests.magi1.test_parity import _job

ROOT = Path(__file__).resolve().parents[2]
SHAPE_24B = dict(gated_linear_unit=True, half_channel_vae=True, in_channels=32, out_channels=32, x_rescale_factor=0.1)


def _torchrun(ranks: int, args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
    for _ in range(2):
        res = subprocess.run(
            [*cmd, "-m", "pipeline.generators.magi1.parity", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        # gloo on the CPU rarely aborts a rank in its C++ threads ("terminate called without an
        # active exception", SIGABRT) under load; seen about once in 60 launches, never with a
        # Python error. One more launch tells that apart from a real failure, which repeats.
        if res.returncode == 0 or "terminate called without an active exception" not in res.stderr:
            return res
    return res


@pytest.mark.parametrize(
    "variant, mode, changes, layout, ranks",
    [
        ("tiny", "t2v", {}, "tp=2", 2),
        ("tiny", "i2v", {}, "tp=2", 2),
        ("tiny", "v2v", {}, "tp=2", 2),
        ("tiny_distill", "i2v", {}, "tp=2", 2),
        ("tiny", "i2v", SHAPE_24B, "tp=2", 2),
        ("tiny", "i2v", {}, "tp=1", 2),  # two replicas of one rank each
    ],
)
def test_layout_makes_the_single_process_latent(tmp_path, variant, mode, changes, layout, ranks):
    w, cfg = make_tiny_checkpoint(tmp_path / "w", variant, seed=2, model_changes=changes or None)
    cfg = cfg.replace(runtime_config={"num_steps": 4, "load": "/nonexistent", "vae_pretrained": "/nonexistent"})
    cfg.to_json(tmp_path / "cfg.json")
    _job(tmp_path / "job.safetensors", cfg, mode, 24)
    args = ["sample", "--magi-config", str(tmp_path / "cfg.json"), "--weights", str(w)]
    args += ["--job", str(tmp_path / "job.safetensors"), "--dtype", "fp32"]
    single = subprocess.run(
        [sys.executable, "-m", "pipeline.generators.magi1.parity", *args, "--out", str(tmp_path / "one.safetensors")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    res = _torchrun(ranks, [*args, "--out", str(tmp_path / "many.safetensors"), "--parallel", layout])
    assert res.returncode == 0, res.stderr[-3000:]
    one, many = (load_file(tmp_path / f"{n}.safetensors")["latent"] for n in ("one", "many"))
    assert one.shape == many.shape
    assert (one - many).abs().max() <= 1e-5 * max(1.0, float(one.abs().max()))
    held = [float(m) for m in re.findall(r"DiT weights held ([\d.]+) MB", res.stdout)]
    assert len(held) == ranks
    if layout == "tp=2":  # each rank read only its slices: the split linears are most of the weights
        whole = float(re.search(r"DiT weights held ([\d.]+) MB", single.stdout).group(1))
        assert max(held) < 0.8 * whole


def test_a_layout_that_cannot_split_the_model_is_refused():
    tiny = preset("tiny").model_config  # 4 heads, 2 query groups, ffn 128
    assert Layout.parse("tp=2", 4) == Layout(tp=2, replicas=2)
    (message,) = Layout.parse("tp=4").problems(tiny)
    assert "num_query_groups=2" in message
    assert any("must divide 8" in m for m in Layout(tp=16).problems(preset("24b").model_config))
    for bad in ("tp=0", "pp=2", "tp"):
        with pytest.raises(ValueError, match="--parallel"):
            Layout.parse(bad)
    with pytest.raises(ValueError, match="do not divide 3"):
        Layout.parse("tp=2", 3)


def test_an_in_memory_model_splits_alike():
    """parallelize() on a model already in memory (random weights: the bench's path) gives the
    one-rank forward too, SwiGLU halves re-paired in place."""
    res = subprocess.run(
        [sys.executable, "bench/magi1_parallel.py", "--layers", "1", "--hidden", "512", "--chunks", "2"]
        + ["--size", "8", "--reps", "1", "--tp", "1", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    row = next(line for line in res.stdout.splitlines() if line.startswith("tp=2"))
    assert float(row.split()[-1]) <= 1e-5, res.stdout
