"""The commands, in one place: ``python -m pipeline COMMAND key=value ...``.

Each is a module here with a ``main(argv) -> exit status``; they are the top layer (they import
the launchers and the library, nothing imports them). ``pipeline/cli/command.py`` is how they
read their arguments and how they end.
"""

from __future__ import annotations

COMMANDS = {  # command -> (module, what it does)
    "run": ("run", "run the chain of stages (Hydra: +experiment=NAME key=value, -m for sweeps)"),
    "resume": ("resume", "finish a run folder: only what is missing or failed"),
    "status": ("status", "per stage and shard: done, running, failed, pending"),
    "compare": ("compare", "finished runs or a sweep side by side: table, best-of-N curve, plots, page"),
    "cache": ("cache", "the per-stage caches: list them, prune what no run folder uses"),
    "score-videos": ("score_videos", "the reward of any videos, into a CSV"),
    "evaluate-folder": ("evaluate_folder", "the Physics-IQ score of a folder of generations"),
    "synthetic-data": ("synthetic_data", "write the synthetic Physics-IQ dataset of the demo"),
    "tiny-models": ("tiny_models", "write the tiny random models of the demo and the tests"),
}


# Module paths that run a command too, for scripts written before ``python -m pipeline COMMAND``;
# each only calls the command's ``main``.
MODULE_ALIASES = {"pipeline.run": "run", "pipeline.resume": "resume", "pipeline.status": "status"}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m pipeline COMMAND [key=value ...]   (COMMAND --help for its keys)", ""]
    lines += [f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items()]
    return "\n".join(lines)
