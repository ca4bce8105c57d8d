"""The registered V-JEPA 2 surprise reward: a scorer built from its config, and its checks."""

from __future__ import annotations

from pipeline.errors import ConfigError

from .spec import VJEPA2SurpriseConfig


class VJEPA2Surprise:
    @staticmethod
    def from_config(r: VJEPA2SurpriseConfig):
        from pipeline.devices import resolve_device

        from .model import load_world_model, resolve_precision
        from .surprise import SurpriseScorer

        device = resolve_device(r.device)
        dtype, tf32 = resolve_precision(r.dtype, device)
        model = load_world_model(r.variant, r.checkpoint, arch=r.arch, weights=r.weights, device=device, dtype=dtype)
        return SurpriseScorer(
            model,
            window_size=r.window_size,
            context_frames=r.context_frames,
            stride=r.stride,
            aggregate="max" if r.aggregate == "max" else "mean",  # the schema admits only these
            max_frames=r.max_frames,
            batch_windows=r.batch_windows,
            allow_tf32=tf32,
        )

    @staticmethod
    def check(r: VJEPA2SurpriseConfig) -> None:
        from .checkpoints import RewardModelError
        from .model import check_reward_config

        try:
            check_reward_config(r)
        except RewardModelError as exc:
            raise ConfigError(f"reward.checkpoint: {exc}") from None

    @staticmethod
    def settings_problems(r: VJEPA2SurpriseConfig, frames: int | None) -> list[str]:
        out = []
        if r.context_frames >= r.window_size:
            out.append(
                f"reward.context_frames={r.context_frames}: leaves no frame to predict in a window of "
                f"reward.window_size={r.window_size}"
            )
        if r.max_frames is not None and r.max_frames < r.window_size:
            out.append(f"reward.max_frames={r.max_frames}: fewer than one window (reward.window_size={r.window_size})")
        if frames is not None:
            used = min(frames, r.max_frames or frames)
            if used < r.window_size:
                out.append(
                    f"reward.window_size={r.window_size}: longer than the {used} frames the reward sees of "
                    "each candidate"
                )
        return out
