"""V-JEPA 2 input preprocessing, shared by scoring and by the differentiable guidance entry.

WMReward squashes every frame to a square S×S (no crop, aspect ratio not kept), then applies the
V-JEPA eval transform: /255 and ImageNet normalisation. Keeping this in one function guarantees
that a guided sample is judged by exactly the numbers the scorer later reports.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

Layout = Literal["auto", "THWC", "TCHW"]


def as_frame_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Zero-copy tensor view of uint8 numpy frames; tensors pass through unchanged."""
    if isinstance(frames, np.ndarray):
        if frames.dtype != np.uint8:
            # Float numpy arrays are ambiguous ([0,1] or [0,255]?); tensors make the caller decide.
            raise TypeError(f"numpy frames must be uint8, got {frames.dtype}")
        return torch.from_numpy(np.ascontiguousarray(frames))
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"frames must be a numpy array or torch tensor, got {type(frames).__name__}")
    return frames


def _channels_last(x: torch.Tensor, layout: Layout) -> bool:
    if layout == "THWC":
        return True
    if layout == "TCHW":
        return False
    if layout != "auto":
        raise ValueError(f"layout must be 'auto', 'THWC' or 'TCHW', got {layout!r}")
    # Decoded video is THWC; diffusion decoders produce TCHW. A 3-pixel-high frame is the only
    # ambiguous case, and it is never a real video, so prefer channels-last.
    if x.shape[-1] == 3:
        return True
    if x.shape[-3] == 3:
        return False
    raise ValueError(f"cannot find a 3-channel axis in frames of shape {tuple(x.shape)}")


def preprocess_clip(
    frames: np.ndarray | torch.Tensor,
    size: int,
    layout: Layout = "auto",
) -> torch.Tensor:
    """Frames → normalised V-JEPA input of shape (T, 3, S, S), or (B, T, 3, S, S) for batched input.

    Accepted inputs (shape (T,H,W,3) / (T,3,H,W), optionally with a leading batch axis):
      * uint8 numpy array or uint8 torch tensor, values 0..255;
      * floating torch tensor with values on the 0..255 scale (NOT 0..1), which may require grad:
        the whole path is differentiable.
    Output is float32 (float64 input stays float64) on the input's device.
    """
    x = as_frame_tensor(frames)
    if x.ndim not in (4, 5):
        raise ValueError(f"expected (T,H,W,3)/(T,3,H,W) or a batch of them, got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        x = x.to(torch.float32)
    elif not x.is_floating_point():
        raise TypeError(f"frames must be uint8 or floating point, got {x.dtype}")
    elif x.dtype in (torch.float16, torch.bfloat16):
        # Antialiased resize and normalisation in half precision lose ~1e-2 per pixel.
        x = x.to(torch.float32)

    if _channels_last(x, layout):
        x = x.movedim(-1, -3)
    lead = x.shape[:-3]
    c, h, w = x.shape[-3:]
    if c != 3:
        raise ValueError(f"expected 3 colour channels, got {c} (shape {tuple(frames.shape)})")
    x = x.reshape(-1, c, h, w)
    if (h, w) != (size, size):
        # torchvision's tensor Resize (what WMReward calls) defaults to antialias=True.
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    x = (x / 255.0 - mean) / std
    return x.reshape(*lead, c, size, size)
