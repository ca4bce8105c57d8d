"""What an item's work cost, recorded with it: counter deltas of the models it called (generator
passes x rows = NFEs, VAE decodes, reward forwards), seconds and peak memory. The report sums the
records into ``compute/...`` totals, so settings are compared at the compute they spent.

NFE: one generator forward of one sample at one denoising step; a 3-pass CFG step counts 3.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def _cuda():
    torch = sys.modules.get("torch")  # only a process that already uses torch can have CUDA memory
    return torch.cuda if torch is not None and torch.cuda.is_available() else None


@contextmanager
def measured(counters: dict[str, Callable[[], int]]) -> Iterator[dict[str, Any]]:
    """The yielded dict gets, when the block ends: each counter's increase, ``seconds``, and
    ``peak_memory_mb`` (CUDA: the peak allocated during the block; otherwise the process's peak
    resident set so far, which is what Linux keeps)."""
    cuda = _cuda()
    if cuda is not None:
        cuda.reset_peak_memory_stats()
    before = {name: read() for name, read in counters.items()}
    started = time.perf_counter()
    out: dict[str, Any] = {}
    yield out
    out.update({name: read() - before[name] for name, read in counters.items()})
    out["seconds"] = round(time.perf_counter() - started, 3)
    if cuda is not None:
        out["peak_memory_mb"] = round(cuda.max_memory_allocated() / 2**20, 1)
    else:
        out["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def totals(records: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """``compute/...`` totals of the ``compute`` entries of each stage's records: counters summed
    over the run, ``compute/seconds/<stage>`` (and ``<stage>.<phase>`` for an entry's
    ``seconds_<phase>``) summed, ``compute/peak_memory_mb`` the largest."""
    out: dict[str, float] = {}
    peak = 0.0
    for stage, entries in records.items():
        for entry in entries:
            for key, value in entry.items():
                if key == "peak_memory_mb":
                    peak = max(peak, float(value))
                elif key == "seconds" or key.startswith("seconds_"):  # a stage, or a phase within it
                    name = stage if key == "seconds" else f"{stage}.{key.removeprefix('seconds_')}"
                    out[f"compute/seconds/{name}"] = round(out.get(f"compute/seconds/{name}", 0.0) + value, 3)
                else:
                    out[f"compute/{key}"] = out.get(f"compute/{key}", 0) + value
    if records:
        out["compute/peak_memory_mb"] = peak
    return out
