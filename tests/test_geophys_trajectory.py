"""The GeoPhys trajectory statistics on trajectories whose values are known in closed form, against
a direct numpy computation, and their invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.rewards.geophys.trajectory import STATISTICS, linear_prediction_errors, trajectory_statistics


def stats(z) -> dict[str, float]:
    return {k: float(v) for k, v in trajectory_statistics(torch.as_tensor(z, dtype=torch.float64)).items()}


def test_a_straight_line_at_constant_speed_scores_zero_everywhere():
    t = np.arange(10)[:, None]
    z = np.array([1.0, -2.0, 0.5]) + t * np.array([0.3, 0.1, -0.2])
    assert all(abs(v) < 1e-12 for v in stats(z).values())


def test_a_circle_turns_by_its_step_angle_with_known_acceleration():
    phi = 0.3
    k = np.arange(12)
    z = np.stack([np.cos(k * phi), np.sin(k * phi)], axis=1)
    s = stats(z)
    assert s["speed_std"] == pytest.approx(0, abs=1e-12)
    assert s["turn_mean"] == pytest.approx(phi, abs=1e-9) and s["turn_std"] == pytest.approx(0, abs=1e-9)
    assert s["accel_energy"] == pytest.approx(4 * (1 - math.cos(phi)) ** 2, rel=1e-9)


def test_every_statistic_equals_a_direct_computation():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(9, 5))
    v = np.diff(z, axis=0)
    speed = np.linalg.norm(v, axis=1)
    cos = (v[:-1] * v[1:]).sum(1) / (speed[:-1] * speed[1:])
    theta = np.arccos(np.clip(cos, -1, 1))
    accel = z[2:] - 2 * z[1:-1] + z[:-2]
    errors = []
    for t in range(2, len(z)):  # np.polyfit per feature on s = 1..t, evaluated at t + 1
        fit = [np.polyval(np.polyfit(np.arange(1, t + 1), z[:t, d], 1), t + 1) for d in range(z.shape[1])]
        errors.append(z[t] - np.array(fit))
    direct = {
        "speed_std": speed.std(),
        "turn_mean": theta.mean(),
        "turn_std": theta.std(),
        "accel_energy": (accel**2).sum(1).mean(),
        "prediction_error": np.linalg.norm(np.array(errors), axis=1).mean(),
    }
    ours = stats(z)
    assert list(ours) == list(STATISTICS)
    for name in STATISTICS:
        assert ours[name] == pytest.approx(direct[name], rel=1e-10), name
    assert linear_prediction_errors(torch.as_tensor(z)).shape == (len(z) - 2, 5)


def test_translation_and_feature_order_do_not_matter_and_a_pause_does_not_turn():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(8, 4))
    moved = stats(z + 3.0)
    shuffled = stats(z[:, [2, 0, 3, 1]])
    for name, value in stats(z).items():
        assert moved[name] == pytest.approx(value, rel=1e-9) and shuffled[name] == pytest.approx(value, rel=1e-12)
    paused = np.concatenate([z[:3], z[2:3], z[3:]])  # one frame held: a zero step
    assert math.isfinite(stats(paused)["turn_mean"])


def test_bad_shapes_are_refused_naming_the_need():
    with pytest.raises(ValueError, match="need at least 4"):
        trajectory_statistics(torch.zeros(3, 8))
    with pytest.raises(ValueError, match="frames, features"):
        trajectory_statistics(torch.zeros(5))
