"""Reward vs compute of the search strategies, side by side in one run, on the tiny random MAGI-1 and
V-JEPA 2 (CPU): best-of-N for N = 1, 2, 4, 8, beam search and SMC at chunk boundaries.

    python bench/search.py [--items 4] [--frames 144] [--plot bench_search.png]

Per method and averaged over items (one random condition image each): the chosen candidate's
surprise (the lowest final surprise, measured on the decoded frames), NFEs (generator passes x
rows, counted by the engine), reward forwards (V-JEPA windows, counted by the scorer), seconds, and
the chosen surprise relative to best-of-N at the same NFEs. Best-of-N's rows come from one pool of
8 independent candidates per item (candidate k = seed k); BoN-N is the first N, and its NFEs,
reward forwards and seconds are N/8 of the pool's (both are linear in rows). With random weights the
surprises mean nothing physically: the table measures that the machinery lowers the reward it is
given, and what that costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.generators.base import GenerationRequest  # noqa: E402

POOL = 8


def load(tmp: Path, frames: int):
    from omegaconf import OmegaConf

    from pipeline.generators import generator_from_config
    from pipeline.generators.magi1.spec import Magi1GeneratorConfig
    from pipeline.rewards.vjepa2.model import load_world_model
    from pipeline.rewards.vjepa2.surprise import SurpriseScorer
    from pipeline.tiny_models.magi1 import make_tiny_magi1
    from pipeline.tiny_models.vjepa2 import make_tiny_vjepa2

    magi = make_tiny_magi1(tmp / "magi1")
    values = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/generator/magi1_tiny.yaml"))
    values.pop("defaults")
    for key in ("checkpoint", "vae_checkpoint", "t5_checkpoint", "special_tokens"):
        values[key] = values[key].replace("checkpoints/tiny/magi1", str(magi))
    values["num_frames"] = frames
    generator = generator_from_config(Magi1GeneratorConfig(**values), device="cpu")
    reward = load_world_model("tiny", make_tiny_vjepa2(tmp / "vjepa2", seed=0, crop_size=64))
    return generator, SurpriseScorer(reward, window_size=16, context_frames=8, stride=2)


def measure(generator, scorer, run):
    nfe, forwards, started = generator.nfe, scorer.forwards, time.perf_counter()
    surprises = run()
    return surprises, generator.nfe - nfe, scorer.forwards - forwards, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=4)
    ap.add_argument("--frames", type=int, default=144, help="generator.num_frames (144: 7 chunks, 3 branch points)")
    ap.add_argument("--plot", default=None, help="write reward vs NFE as a PNG here")
    args = ap.parse_args()

    from pipeline.search.beam.spec import BeamConfig
    from pipeline.search.beam.strategy import Beam
    from pipeline.search.smc.spec import SMCConfig
    from pipeline.search.smc.strategy import SMC

    methods = {
        "beam 2x2": lambda: (Beam, BeamConfig(beams=2, children=2)),
        "beam 1x4": lambda: (Beam, BeamConfig(beams=1, children=4)),
        "smc 4, beta 24": lambda: (SMC, SMCConfig(particles=4, beta=24.0, ess_threshold=0.97)),
        "smc 4, beta 0": lambda: (SMC, SMCConfig(particles=4, beta=0.0, ess_threshold=0.97)),
    }
    rows: dict[str, list[tuple[float, int, int, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        generator, scorer = load(Path(tmp), args.frames)
        rng = np.random.default_rng(0)
        for item in range(args.items):
            image = rng.integers(0, 256, (generator.height, generator.width, 3), dtype=np.uint8)
            request = GenerationRequest("a ball rolls off a table and bounces", image, 0)

            def pool(request=request):
                session = generator.start(
                    [GenerationRequest(request.prompt, request.condition, s) for s in range(POOL)]
                )
                videos = session.videos()
                return scorer.surprises(np.stack(videos)).cpu().numpy()

            surprises, nfe, forwards, seconds = measure(generator, scorer, pool)
            for n in (1, 2, 4, 8):
                share = n / POOL
                rows.setdefault(f"best-of-{n}", []).append(
                    (float(np.nanmin(surprises[:n])), round(nfe * share), round(forwards * share), seconds * share)
                )
            for name, make in methods.items():
                strategy, cfg = make()

                def searched(strategy=strategy, cfg=cfg, request=request):
                    found = strategy.run(cfg, generator, request, scorer)
                    return np.array([np.nan if s is None else s for s in found.surprises])

                surprises, nfe, forwards, seconds = measure(generator, scorer, searched)
                rows.setdefault(name, []).append((float(np.nanmin(surprises)), nfe, forwards, seconds))
            print(f"item {item + 1}/{args.items} done", file=sys.stderr)

    table = {name: tuple(float(np.mean([r[i] for r in values])) for i in range(4)) for name, values in rows.items()}
    bon = {round(v[1]): v[0] for k, v in table.items() if k.startswith("best-of")}
    print(f"{args.items} items, tiny MAGI-1 ({args.frames} frames asked), tiny V-JEPA 2 (window 16, stride 2)")
    print(f"{'method':<16}{'surprise':>10}{'NFEs':>8}{'reward fwd':>12}{'seconds':>9}{'vs BoN at same NFEs':>22}")
    for name, (surprise, nfe, forwards, seconds) in table.items():
        same = bon.get(round(nfe))
        ratio = f"{surprise / same:.4f}" if same and not name.startswith("best-of") else "-"
        print(f"{name:<16}{surprise:>10.4f}{nfe:>8.0f}{forwards:>12.0f}{seconds:>9.2f}{ratio:>22}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        xs = [table[k][1] for k in table if k.startswith("best-of")]
        ax.plot(xs, [table[k][0] for k in table if k.startswith("best-of")], "o-", label="best-of-N")
        searched = [name for name in table if not name.startswith("best-of")]
        for i, name in enumerate(searched):  # equal NFEs: markers of their own, so none hides another
            surprise, nfe = table[name][0], table[name][1]
            ax.scatter([nfe], [surprise], color=f"C{i + 1}", marker="sD^vP"[i % 5], s=30, label=name, zorder=3)
        ax.set_xlabel("NFEs per item")
        ax.set_ylabel("chosen surprise (lower is better)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
