"""The registered GeoPhys-style verifier (``scorer.py``): a scorer built from its config, and its
checks (these import no torch: they run before any work)."""

from __future__ import annotations

from pipeline.errors import ConfigError

from .spec import MIN_FRAMES, GeoPhysConfig


class GeoPhys:
    """The registered verifier: a scorer built from ``GeoPhysConfig``, and its checks."""

    @staticmethod
    def from_config(r: GeoPhysConfig):
        from pipeline.devices import resolve_device
        from pipeline.rewards.vjepa2.model import resolve_precision

        from .encoder import load_frame_encoder
        from .scorer import TrajectoryScorer

        device = resolve_device(r.device)
        dtype, _ = resolve_precision(r.dtype, device)
        encoder = load_frame_encoder(r.checkpoint, r.layer, r.pooling, r.image_size, str(device), dtype)
        return TrajectoryScorer(encoder, max_frames=r.max_frames, batch_frames=r.batch_frames)

    @staticmethod
    def check(r: GeoPhysConfig) -> None:
        from .folder import encoder_folder_problems

        bad = encoder_folder_problems(r.checkpoint)
        if bad:
            raise ConfigError("reward.checkpoint: " + "; ".join(bad))

    @staticmethod
    def settings_problems(r: GeoPhysConfig, frames: int | None) -> list[str]:
        if frames is not None and min(frames, r.max_frames or frames) < MIN_FRAMES:
            return [f"reward.name=geophys: candidates of {frames} frame(s); the statistics need {MIN_FRAMES}"]
        return []
