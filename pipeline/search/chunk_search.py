"""Search at chunk boundaries of a chunk-wise generator (MAGI-1): the loop shared by the strategies
that keep, drop or duplicate candidates there. A session runs one row per starting seed; at every
chunk boundary the reward scores the videos so far (only the windows the new chunk completes).
Where the rows can still diverge (some chunk has not been reached by any step) the strategy decides
which rows continue, and a row that duplicates another gets fresh noise for those chunks, so
children of one parent differ. Later boundaries are traced, not decided: the chunks left are
already in the window, and MAGI-1 being causal across chunks, duplicates would finish identical.
Frozen chunks are never recomputed: a child inherits its parent's latents, KV cache, decoded frames
and reward windows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pipeline.errors import ConfigError

from .base import Found, json_number

# decide(boundary, surprises of the videos so far) -> (rows that continue, what to trace)
Decide = Callable[[int, np.ndarray], tuple[list[int], dict[str, Any]]]


def child_seed(base_seed: int, boundary: int, row: int) -> int:
    """The fresh-noise seed of ``row`` duplicated at ``boundary``: fixed by the config, distinct
    from every starting seed's stream in practice (a 32-bit draw of a SeedSequence)."""
    return int(np.random.SeedSequence([base_seed, boundary + 1, row]).generate_state(1, dtype=np.uint32)[0])


def fresh_noise_for_duplicates(rows: Sequence[int], base_seed: int, boundary: int) -> dict[int, int]:
    """{row: seed} for every row after the first that continues one parent."""
    seen: set[int] = set()
    fresh = {}
    for i, parent in enumerate(rows):
        if parent in seen:
            fresh[i] = child_seed(base_seed, boundary, i)
        seen.add(parent)
    return fresh


def needs_chunk_sessions(name: str, generator_class: type) -> list[str]:
    if not getattr(generator_class, "chunk_wise", False):
        return [
            f"search.name={name}: searches at chunk boundaries and needs a chunk-wise generator "
            f"(MAGI-1, generator=magi1_*); {getattr(generator_class, 'kind', generator_class.__name__)} "
            "makes a video in one piece"
        ]
    return []


def needs_whole_windows(name: str, reward_cfg: Any) -> list[str]:
    sections = [("reward", vars(reward_cfg))]
    members = getattr(reward_cfg, "members", None) or []  # an ensemble's verifiers
    sections += [(f"reward.members[{i}]", m) for i, m in enumerate(members) if isinstance(m, dict)]
    return [
        f"{key}.max_frames={fields['max_frames']}: search.name={name} scores the video so far, "
        f"which a uniform subsample of the final video cannot; set {key}.max_frames=null"
        for key, fields in sections
        if fields.get("max_frames") is not None
    ]


def chunk_search(generator, request, seeds: Sequence[int], scorer, decide: Decide, base_seed: int) -> Found:
    """Run the session over ``seeds`` with ``decide`` at every boundary but the last."""
    from pipeline.generators.base import GenerationRequest

    if not generator.chunk_wise:
        raise ConfigError(f"{generator.kind} cannot be driven chunk by chunk")
    requests = [GenerationRequest(request.prompt, request.condition, int(s)) for s in seeds]
    session = generator.start(requests)
    so_far = scorer.so_far(len(requests))
    trace: list[dict[str, Any]] = []
    boundary = 0
    values = np.full(len(requests), np.nan)
    while (frames := session.advance_to_chunk_boundary()) is not None:
        values = so_far.extend(frames).double().cpu().numpy()
        if session.done:
            break
        if not session.can_branch:
            trace.append({"chunk": boundary, "surprise": [json_number(v) for v in values], "decided": False})
            boundary += 1
            continue
        rows, entry = decide(boundary, values)
        fresh = fresh_noise_for_duplicates(rows, base_seed, boundary)
        if rows != list(range(session.rows)):
            session.select_rows(rows, fresh)
            so_far.select_rows(rows)
        trace.append(
            {
                "chunk": boundary,
                "surprise": [json_number(v) for v in values],
                "rows": list(rows),
                "fresh_noise": {str(k): v for k, v in fresh.items()},
                "decided": True,
                **entry,
            }
        )
        boundary += 1
    videos = session.videos()
    return Found(
        videos=videos,
        seeds=[int(seeds[o]) for o in session.origins],
        surprises=[json_number(v) for v in values],
        trace=trace,
    )
