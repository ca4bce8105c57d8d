"""The five trajectory statistics of a video's per-frame embeddings that GeoPhys ranks candidates by
(arXiv 2606.20707, its definitions; no code was released, so this is our reading of them).

For frame embeddings z_1..z_T (one vector per frame from a frozen image encoder):

* v_t = z_{t+1} - z_t, the step; **speed_std** = std over t of ||v_t||;
* theta_t = the angle between v_t and v_{t+1}; **turn_mean** and **turn_std** over t;
* a_t = z_{t+2} - 2 z_{t+1} + z_t; **accel_energy** = mean over t of ||a_t||^2;
* e_t = z_{t+1} - the linear predictor of z_{t+1} fitted on z_1..z_t; **prediction_error** = mean
  over t of ||e_t||.

Larger is less plausible for every one. Our readings where the paper leaves a choice: standard
deviations are over the steps themselves (ddof 0); an angle next to a step of length zero is 0 (a
pause does not turn); the linear predictor is the least-squares line through the past per feature
(z_s ~ alpha + beta s, s = 1..t, extrapolated to t + 1), fitted from two past frames on, so e_t is
defined for t = 2..T-1. A trajectory needs 4 frames (two angles make a spread).
"""

from __future__ import annotations

import torch

from .spec import MIN_FRAMES

STATISTICS = ("speed_std", "turn_mean", "turn_std", "accel_energy", "prediction_error")


def trajectory_statistics(z: torch.Tensor) -> dict[str, torch.Tensor]:
    """The five statistics of embeddings ``z`` (T, D), each a 0-d tensor in float64."""
    if z.ndim != 2:
        raise ValueError(f"embeddings must be (frames, features), got shape {tuple(z.shape)}")
    if z.shape[0] < MIN_FRAMES:
        raise ValueError(f"{z.shape[0]} frame(s): the trajectory statistics need at least {MIN_FRAMES}")
    z = z.to(torch.float64)
    steps = z[1:] - z[:-1]
    speed = steps.norm(dim=1)
    turn = _angles(steps[:-1], steps[1:])
    accel = z[2:] - 2 * z[1:-1] + z[:-2]
    return {
        "speed_std": speed.std(correction=0),
        "turn_mean": turn.mean(),
        "turn_std": turn.std(correction=0),
        "accel_energy": (accel**2).sum(dim=1).mean(),
        "prediction_error": linear_prediction_errors(z).norm(dim=1).mean(),
    }


def _angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise angles, as 2 atan2(|a^ - b^|, |a^ + b^|) of the unit vectors: exact near 0 and pi,
    where arccos of the cosine loses half the digits."""
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    moving = (na > 0) & (nb > 0)
    ua = a / torch.where(moving, na, torch.ones_like(na))
    ub = b / torch.where(moving, nb, torch.ones_like(nb))
    angle = 2 * torch.atan2((ua - ub).norm(dim=1), (ua + ub).norm(dim=1))
    return torch.where(moving[:, 0], angle, torch.zeros_like(angle))


def linear_prediction_errors(z: torch.Tensor) -> torch.Tensor:
    """e_t for t = 2..T-1 (rows): z_{t+1} minus the least-squares line through z_1..z_t at t + 1."""
    rows = []
    for t in range(2, z.shape[0]):
        past = z[:t]
        s = torch.arange(1, t + 1, dtype=z.dtype, device=z.device)
        s_mean, z_mean = s.mean(), past.mean(dim=0)
        slope = ((s - s_mean)[:, None] * (past - z_mean)).sum(dim=0) / ((s - s_mean) ** 2).sum()
        rows.append(z[t] - (z_mean + slope * (t + 1 - s_mean)))
    return torch.stack(rows)
