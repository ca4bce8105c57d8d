"""Dtype names, one table for the whole package: what a config or a command line may say
(``bf16``, ``torch.bfloat16``, ``half``, ...) and the canonical torch name it means."""

from __future__ import annotations

from typing import Any

NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}
CANONICAL = ("float32", "bfloat16", "float16")


def dtype_name(value: Any) -> str | None:
    """The canonical name of a dtype given as a name or a torch dtype; None when unknown."""
    return NAMES.get(str(value).replace("torch.", "").lower())


def torch_dtype(value: Any) -> Any:
    """The torch dtype of a name (or a torch dtype); ValueError naming the choices otherwise."""
    import torch

    if isinstance(value, torch.dtype):
        return value
    name = dtype_name(value)
    if name is None:
        raise ValueError(f"unknown dtype {value!r}; use one of {list(CANONICAL)}")
    return getattr(torch, name)
