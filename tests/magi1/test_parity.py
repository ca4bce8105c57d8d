"""The parity CLI round trip on tiny official-layout folders (DiT inference_weight[.distill]/, ViTVAE)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from pipeline.generators.magi1 import parity
from pipeline.generators.magi1 import sampler as SM
from pipeline.generators.magi1.checkpoint import load_dit
from pipeline.generators.magi1.config import load_magi_config
from pipeline.generators.magi1.text import SpecialTokenOptions, caption_rows, null_caption_rows
from pipeline.generators.magi1.vae import MagiVAE
from pipeline.tiny_models.magi1 import make_tiny_checkpoint, write_tiny_vae

ROOT = Path(__file__).resolve().parents[2]


def _job(path: Path, cfg, mode: str, num_frames: int, seed: int = 0) -> dict:
    r, m = cfg.runtime_config, cfg.model_config
    tp = {"t2v": 0, "i2v": 1, "v2v": 8}[mode]
    T = SM.latent_frames(num_frames, tp)
    g = torch.Generator().manual_seed(seed)
    h, w = r.video_size_h // 8, r.video_size_w // 8
    t = {
        "noise": SM.draw_noise(seed, (1, 16, T, h, w)),
        "caption_embs": torch.randn(1, 1, m.caption_max_length, m.caption_channels, generator=g),
        "emb_masks": (torch.arange(m.caption_max_length) < 9).to(torch.int64)[None],
    }
    if tp:
        t["prefix_video"] = torch.randn(1, 16, tp, h, w, generator=g)
    save_file(t, str(path), metadata={"mode": mode, "num_frames": str(num_frames)})
    return t


def _direct(weights: Path, cfg, job: dict) -> torch.Tensor:
    model = load_dit(weights, cfg)
    null = model.y_embedder.null_caption_embedding.detach()
    T = job["noise"].shape[2]
    nch = T // 6
    pre = job.get("prefix_video")
    te, tm = caption_rows(
        job["caption_embs"],
        job["emb_masks"],
        nch,
        clean_chunks=0 if pre is None else pre.shape[2] // 6,
        null_caption_embedding=null,
        options=SpecialTokenOptions.none(),
    )
    ne, nm = null_caption_rows(null, nch)
    return SM.sample(model, SM.SamplerSettings.from_magi_config(cfg), job["noise"], te, tm, ne, nm, pre).latent


@pytest.mark.parametrize("variant,mode", [("tiny", "i2v"), ("tiny_distill", "v2v")])
def test_sample_cli_round_trip(tmp_path, variant, mode):
    w, cfg = make_tiny_checkpoint(tmp_path / "w", variant, seed=2)
    cfg = cfg.replace(runtime_config={"num_steps": 4, "load": "/nonexistent", "vae_pretrained": "/nonexistent"})
    cfg.to_json(tmp_path / "cfg.json")
    job = _job(tmp_path / "job.safetensors", cfg, mode, 24)
    out = tmp_path / "out.safetensors"
    assert (
        parity.main(
            [
                "sample",
                "--magi-config",
                str(tmp_path / "cfg.json"),
                "--weights",
                str(w),
                "--job",
                str(tmp_path / "job.safetensors"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with safe_open(str(out), framework="pt") as f:
        latent, meta = f.get_tensor("latent"), f.metadata()
    frames = json.loads(meta["chunk_frames"])
    # i2v: ceil((6 + 1)/6) = 2 chunks of 6 (frame 0 kept); v2v: prefix 8 -> 3 chunks, output 4 + 6
    assert frames == ([6, 6] if mode == "i2v" else [4, 6])
    assert latent.shape == (1, 16, sum(frames), 4, 4)
    ref = _direct(w, load_magi_config(tmp_path / "cfg.json"), job)
    assert torch.allclose(latent, ref, atol=1e-6)


def test_sample_cli_rejects_wrong_noise_shape(tmp_path):
    w, cfg = make_tiny_checkpoint(tmp_path / "w", "tiny", seed=0)
    cfg = cfg.replace(runtime_config={"num_steps": 4})
    cfg.to_json(tmp_path / "cfg.json")
    job = _job(tmp_path / "job.safetensors", cfg, "t2v", 24)
    job["noise"] = job["noise"][:, :, :, :2].contiguous()
    save_file(job, str(tmp_path / "bad.safetensors"), metadata={"mode": "t2v", "num_frames": "24"})
    with pytest.raises(SystemExit, match="expected"):
        parity.run_sample(
            str(tmp_path / "cfg.json"), str(w), str(tmp_path / "bad.safetensors"), str(tmp_path / "o.safetensors")
        )


def test_decode_and_encode_cli(tmp_path):
    vdir = write_tiny_vae(tmp_path / "vae", seed=1)
    z = torch.randn(1, 16, 6, 4, 4, generator=torch.Generator().manual_seed(0)) * 0.2
    save_file({"latent": z}, str(tmp_path / "z.safetensors"))
    cmd = [
        sys.executable,
        "-m",
        "pipeline.generators.magi1.parity",
        "decode",
        "--vae",
        str(vdir),
        "--latent",
        str(tmp_path / "z.safetensors"),
        "--out",
        str(tmp_path / "f.safetensors"),
    ]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
    frames = load_file(str(tmp_path / "f.safetensors"))["frames"]
    want = MagiVAE.from_folder(vdir, dtype=torch.bfloat16).decode_to_uint8(z)[0]
    assert frames.dtype == torch.uint8 and tuple(frames.shape) == (24, 32, 32, 3)
    assert np.array_equal(frames.numpy(), want)
    save_file({"frames": frames[:8].contiguous()}, str(tmp_path / "in.safetensors"))
    parity.main(
        [
            "encode",
            "--vae",
            str(vdir),
            "--frames",
            str(tmp_path / "in.safetensors"),
            "--out",
            str(tmp_path / "lat.safetensors"),
            "--dtype",
            "fp32",
        ]
    )
    lat = load_file(str(tmp_path / "lat.safetensors"))["latent"]
    assert lat.shape == (1, 16, 2, 4, 4)
    ref = MagiVAE.from_folder(vdir, dtype=torch.float32).encode(frames[:8].numpy())
    assert torch.allclose(lat, ref, atol=1e-6)
