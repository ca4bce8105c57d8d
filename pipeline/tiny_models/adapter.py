"""A tiny velocity-field adapter for the tiny Wan folders (``pipeline/generators/adapter.py``
format), with random non-zero weights so that it visibly changes what the backbone predicts."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.files import build_folder


def make_tiny_wan_adapter(out_dir: str | os.PathLike, seed: int = 0, std: float = 0.1) -> Path:
    from .wan import TINY_CONFIG

    z = TINY_CONFIG["vae"]["z_dim"]
    kwargs = {"in_channels": 2 * z + 4, "out_channels": z, "text_dim": TINY_CONFIG["text_encoder"]["d_model"]}
    kwargs["hidden"] = 16

    def build(tmp: Path) -> None:
        import torch

        from pipeline.generators.adapter import save_adapter
        from pipeline.generators.velocity_adapter import VelocityAdapter

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = VelocityAdapter(**kwargs)
            torch.nn.init.normal_(module.out.weight, std=std)
        save_adapter(module, kwargs, tmp)

    def complete(out: Path) -> bool:
        from pipeline.generators.adapter import adapter_folder_problems

        return not adapter_folder_problems(out)

    return build_folder(out_dir, build, complete)
