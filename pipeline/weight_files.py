"""Weight files cut short (an interrupted download or copy), found before any model is built:
a few bytes of each file are read, never the tensors."""

from __future__ import annotations

import json
from pathlib import Path


def truncated_weights(path: Path) -> str | None:
    """Why a weight file is cut short (an interrupted download or copy), or None; reads a few
    bytes only. safetensors: the header's last tensor must end at the end of the file; torch
    ``.pt``/``.pth``/``.bin`` (zip format): the zip's central directory must be there."""
    import struct
    import zipfile

    path = Path(path)
    try:
        size = path.stat().st_size
        if path.suffix == ".safetensors":
            with open(path, "rb") as fh:
                head = fh.read(8)
                if len(head) < 8:
                    return f"{size} bytes, no safetensors header"
                (n,) = struct.unpack("<Q", head)
                if 8 + n > size:
                    return f"{size} bytes, shorter than its {n}-byte header"
                header = json.loads(fh.read(n))
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
            if 8 + n + end != size:
                return f"{size} bytes, its header describes {8 + n + end}"
        elif path.suffix in (".pt", ".pth", ".bin") and not zipfile.is_zipfile(path):
            with open(path, "rb") as fh:
                legacy = fh.read(2) == b"\x80\x02"  # pre-1.6 pickle format: no cheap check exists
            if not legacy:
                return f"{size} bytes, not a complete torch checkpoint (no zip directory)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable: {exc}"
    return None


def truncated_in(folder: Path) -> list[str]:
    """``path (truncated: why)`` for each weight file directly in ``folder`` that is cut short."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [
        f"{p} (truncated: {why})"
        for p in sorted(folder.iterdir())
        if p.suffix in (".safetensors", ".pt", ".pth", ".bin") and (why := truncated_weights(p))
    ]
