"""Prompt variants: the text each item is generated from, when it is not the benchmark's own.

By default an item's prompt is its ``description`` in descriptions.csv. ``benchmark.prompts=FILE``
replaces it with rewritten prompts (e.g. model-specific "best practice" prompts) from a CSV with a
``prompt`` column and exactly one key column (see prompts/README.md):

* ``item_id``               "0001": one benchmark item (take-1 id);
* ``generated_video_name``  "0001_perspective-left_trimmed-ball-falls.mp4": one item, by its name;
* ``scenario``              "trimmed-ball-falls.mp4" (".mp4" optional): all views of a scenario.

Every item of the run must get a prompt (a variant file that silently fell back to the original
descriptions for some items would mix two prompt sets in one score); rows that match no item of
the run are allowed, so one file serves a dataset and its ``max_scenarios`` subsets.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.errors import PipelineError

if TYPE_CHECKING:
    from pipeline.benchmarks.physicsiq.layout import BenchmarkItem

KEY_COLUMNS = ("item_id", "generated_video_name", "scenario")
REPO_ROOT = Path(__file__).resolve().parent.parent.parent


class PromptVariantError(PipelineError, ValueError):
    """A prompt-variant file that cannot be read or does not cover the run's items."""


def resolve_prompt_file(path: str | os.PathLike) -> Path:
    """As given (relative to the working directory), else relative to the repository root, so
    ``benchmark.prompts=prompts/NAME.csv`` works from anywhere."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if not p.is_absolute() and (REPO_ROOT / p).is_file():
        return REPO_ROOT / p
    raise PromptVariantError(f"prompt-variant file not found: {path} (also looked in {REPO_ROOT / p})")


def _item_key(item: BenchmarkItem, column: str) -> str:
    if column == "item_id":
        return item.item_id
    if column == "generated_video_name":
        return item.generated_video_name
    return item.scenario


def load_prompt_variants(path: str | os.PathLike, items: Iterable[BenchmarkItem]) -> dict[str, str]:
    """item_id -> prompt for every item in ``items``; raises naming what is wrong or missing."""
    file = resolve_prompt_file(path)
    try:
        df = pd.read_csv(file, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise PromptVariantError(f"{file}: not a readable CSV ({exc})") from None
    keys = [c for c in KEY_COLUMNS if c in df.columns]
    if "prompt" not in df.columns or len(keys) != 1:
        raise PromptVariantError(
            f"{file}: needs a 'prompt' column and exactly one key column of {list(KEY_COLUMNS)}; has {list(df.columns)}"
        )
    key = keys[0]
    values = df[key].str.strip()
    if key == "scenario":
        values = values.map(lambda s: s if s.endswith(".mp4") else f"{s}.mp4")
    dupes = sorted(set(values[values.duplicated()]))
    if dupes:
        raise PromptVariantError(f"{file}: {key} listed more than once: {dupes[:5]}")
    prompts = dict(zip(values, df["prompt"].str.strip()))
    empty = sorted(k for k, v in prompts.items() if not v)
    if empty:
        raise PromptVariantError(f"{file}: empty prompt for {key} {empty[:5]}")
    out, missing = {}, []
    for it in items:
        k = _item_key(it, key)
        if k in prompts:
            out[it.item_id] = prompts[k]
        else:
            missing.append(k)
    if missing:
        raise PromptVariantError(
            f"{file}: no prompt for {len(missing)} item(s) of the run "
            f"(by {key}): {', '.join(sorted(set(missing))[:10])}"
        )
    return out
