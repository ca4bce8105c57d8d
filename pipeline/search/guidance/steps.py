"""Which denoising steps guidance acts on, and how many updates each gets. ``frequency`` counts the
sampler's forward steps (every frequency-th forward step is a candidate, as WMReward's
``guidance_frequency``); ``start``/``end`` and ``pattern`` are read on the schedule of the chunk
being guided (for a one-piece generator, the one schedule): guided when its step i has
start <= i / steps < end, with ``pattern``'s count of updates at i when one is given
(WMReward's step-pattern strings: ``0x5,1x45`` is no update for steps 0-4, one for steps 5-49)."""

from __future__ import annotations

from typing import Any


def parse_pattern(text: str) -> list[int] | None:
    """``"0x5,1x45"`` -> [0]*5 + [1]*45 (tokens ``count_per_step x steps``); a lone ``"2"`` means
    that count at every step (None: the length is the schedule's). Raises ValueError."""
    tokens = [t.strip() for t in str(text).split(",")]
    if len(tokens) == 1 and "x" not in tokens[0]:
        _count(tokens[0])  # validates
        return None
    out: list[int] = []
    for token in tokens:
        value, sep, repeat = token.partition("x")
        if not sep:
            raise ValueError(f"token {token!r} has no 'x' (write updates x steps, e.g. 1x45)")
        n = _count(repeat)
        if n < 1:
            raise ValueError(f"token {token!r}: the step count after 'x' must be a whole number >= 1")
        out += [_count(value)] * n
    return out


def _count(text: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a whole number of updates (>= 0)")
    return int(text)


def pattern_check(value: Any) -> str | None:
    """A ``setting`` domain check: what is wrong with a pattern string, or None."""
    try:
        parse_pattern(value)
    except ValueError as e:
        return f"is not a step pattern like 0x5,1x45: {e}"
    return None


def updates_per_step(cfg: Any, num_steps: int) -> list[int]:
    """Updates at each step 0..num_steps-1 of a chunk's schedule (0 = not guided); ``frequency``
    applies on top, to the forward step."""
    counts = parse_pattern(cfg.pattern) if cfg.pattern is not None else None
    if cfg.pattern is not None and counts is None:
        counts = [int(str(cfg.pattern).strip())] * num_steps
    out = []
    for i in range(num_steps):
        in_range = cfg.start <= i / num_steps < cfg.end
        out.append((counts[i] if counts is not None else 1) if in_range else 0)
    return out


def schedule_problems(cfg: Any, num_steps: int | None) -> list[str]:
    out = []
    if cfg.start >= cfg.end:
        out.append(f"search.start={cfg.start}: must be below search.end={cfg.end} (no step would be guided)")
    if cfg.pattern is not None and num_steps is not None:
        counts = parse_pattern(cfg.pattern)
        if counts is not None and len(counts) != num_steps:
            out.append(
                f"search.pattern={cfg.pattern!r}: covers {len(counts)} steps, the generator's schedule has "
                f"{num_steps} (generator.steps)"
            )
    if not out and num_steps is not None and not any(updates_per_step(cfg, num_steps)):
        out.append(
            f"search.start={cfg.start}, search.end={cfg.end}"
            + (f", search.pattern={cfg.pattern!r}" if cfg.pattern is not None else "")
            + f": no step of the {num_steps}-step schedule would be guided"
        )
    return out
