"""Reward vs compute of the search strategies, side by side in one run, on the tiny random MAGI-1 and
V-JEPA 2 (CPU): best-of-N for N = 1 to 16, reward gradient guidance, beam search and SMC at chunk
boundaries.

    python bench/search.py [--items 4] [--frames 144] [--plot bench_search.png]

Per method and averaged over items (one random condition image each): the chosen candidate's
surprise (the lowest final surprise, measured on the decoded frames), NFEs (generator passes x
rows, counted by the engine), reward forwards and backwards (V-JEPA windows, counted by the
scorer), seconds, and the chosen surprise relative to best-of-N at the same NFEs. Best-of-N's rows
come from one pool of 16 independent candidates per item (candidate k = seed k); BoN-N is the first
N, and its NFEs, reward forwards and seconds are N/16 of the pool's (all linear in rows). Guidance
spends no extra NFE through the clean estimate (its price is in reward backwards, decodes and
seconds); through the model it adds one set of passes per update. With random weights the
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

POOL = 16


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
    nfe, forwards, backwards, started = generator.nfe, scorer.forwards, scorer.backwards, time.perf_counter()
    surprises = run()
    spent = (generator.nfe - nfe, scorer.forwards - forwards, scorer.backwards - backwards)
    return surprises, *spent, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=4)
    ap.add_argument("--frames", type=int, default=144, help="generator.num_frames (144: 7 chunks, 3 branch points)")
    ap.add_argument("--plot", default=None, help="write reward vs NFE as a PNG here")
    args = ap.parse_args()

    from pipeline.search.beam.spec import BeamConfig
    from pipeline.search.beam.strategy import Beam
    from pipeline.search.guidance.spec import GuidanceConfig
    from pipeline.search.guidance.strategy import Guidance
    from pipeline.search.smc.spec import SMCConfig
    from pipeline.search.smc.strategy import SMC

    methods = {
        "guidance 0.05": lambda: (Guidance, GuidanceConfig(n=1, scale=0.05, frequency=1)),
        "guidance 0.2": lambda: (Guidance, GuidanceConfig(n=1, scale=0.2, frequency=1)),
        "guid. 0.05 model": lambda: (Guidance, GuidanceConfig(n=1, scale=0.05, frequency=1, gradient="model")),
        "guid. 0.05 x4": lambda: (Guidance, GuidanceConfig(n=4, scale=0.05, frequency=1)),
        "beam 2x2": lambda: (Beam, BeamConfig(beams=2, children=2)),
        "beam 1x4": lambda: (Beam, BeamConfig(beams=1, children=4)),
        "smc 4, beta 24": lambda: (SMC, SMCConfig(particles=4, beta=24.0, ess_threshold=0.97)),
        "smc 4, beta 0": lambda: (SMC, SMCConfig(particles=4, beta=0.0, ess_threshold=0.97)),
    }
    rows: dict[str, list[tuple[float, int, int, int, float]]] = {}
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

            surprises, nfe, forwards, _, seconds = measure(generator, scorer, pool)
            for n in (1, 2, 4, 8, 16):
                share = n / POOL
                rows.setdefault(f"best-of-{n}", []).append(
                    (float(np.nanmin(surprises[:n])), round(nfe * share), round(forwards * share), 0, seconds * share)
                )
            for name, make in methods.items():
                strategy, cfg = make()

                def searched(strategy=strategy, cfg=cfg, request=request):
                    found = strategy.run(cfg, generator, request, scorer)
                    return np.array([np.nan if s is None else s for s in found.surprises])

                surprises, nfe, forwards, backwards, seconds = measure(generator, scorer, searched)
                rows.setdefault(name, []).append((float(np.nanmin(surprises)), nfe, forwards, backwards, seconds))
            print(f"item {item + 1}/{args.items} done", file=sys.stderr)

    table = {name: tuple(float(np.mean([r[i] for r in values])) for i in range(5)) for name, values in rows.items()}
    bon = {round(v[1]): v[0] for k, v in table.items() if k.startswith("best-of")}
    print(f"{args.items} items, tiny MAGI-1 ({args.frames} frames asked), tiny V-JEPA 2 (window 16, stride 2)")
    head = f"{'method':<18}{'surprise':>10}{'NFEs':>8}{'reward fwd':>12}{'reward bwd':>12}{'seconds':>9}"
    print(head + f"{'vs BoN at same NFEs':>22}")
    for name, (surprise, nfe, forwards, backwards, seconds) in table.items():
        same = bon.get(round(nfe))
        ratio = f"{surprise / same:.4f}" if same and not name.startswith("best-of") else "-"
        print(f"{name:<18}{surprise:>10.4f}{nfe:>8.0f}{forwards:>12.0f}{backwards:>12.0f}{seconds:>9.2f}{ratio:>22}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
        bon_names = [k for k in table if k.startswith("best-of")]
        searched = [name for name in table if not name.startswith("best-of")]
        for ax, col, label in ((axes[0], 1, "NFEs per item"), (axes[1], 4, "seconds per item (CPU)")):
            ax.plot([table[k][col] for k in bon_names], [table[k][0] for k in bon_names], "o-", label="best-of-N")
            for i, name in enumerate(searched):  # equal NFEs: markers of their own, so none hides another
                x, y = table[name][col], table[name][0]
                ax.scatter([x], [y], color=f"C{i + 1}", marker="sD^vPX*h"[i % 8], s=30, label=name, zorder=3)
            ax.set_xscale("log", base=2)
            ax.set_xlabel(label)
        axes[0].set_ylabel("chosen surprise (lower is better)")
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
