"""Physics-IQ as a run's benchmark: its dataset turned into run items, and its contract checked
against the generator before any work."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError, PipelineError

if TYPE_CHECKING:
    from pipeline.benchmarks.physicsiq.layout import PhysicsIQDataset
    from pipeline.config import Config
    from pipeline.items import Item

MODES = ("i2v", "v2v")


def generator_accepts_clips(kind: str) -> bool:
    """Whether the generator engine ``kind`` takes a (T, H, W, 3) clip as its condition.

    Engines declare it with a class attribute ``accepts_clips = True``; without it an engine is
    image-to-video only (Wan I2V)."""
    from pipeline import generators

    try:
        cls = generators.generator_class(kind)
    except Exception:  # an unknown kind is reported by the generator's own checks
        return False
    return bool(getattr(cls, "accepts_clips", False))


class PhysicsIQBenchmark:
    """Physics-IQ: one item per take-1 (scenario, view), conditioned on its switch frame (i2v) or
    on its 3 s conditioning clip at the generator's fps (v2v)."""

    def __init__(self, cfg: Config):
        from pipeline.benchmarks.physicsiq.layout import DatasetError, PhysicsIQDataset

        b, g = cfg.benchmark, cfg.generator
        if b.mode not in MODES:
            raise ConfigError(f"benchmark.mode={b.mode!r} is not one of {list(MODES)}")
        # benchmark.fps is the evaluation CLI's knob; in a run the generator's fps decides, and a
        # different value would score the submission against ground truth at the wrong rate.
        if b.fps is not None and float(b.fps) != float(g.fps):
            raise ConfigError(
                f"benchmark.fps={b.fps:g} differs from generator.fps={g.fps:g}; in a "
                "pipeline run the evaluation uses the generator's fps: leave "
                "benchmark.fps unset (null) or set it to the same value"
            )
        from pipeline.generators import GENERATORS

        if g.kind in GENERATORS.specs and not GENERATORS.implementation(g.kind).takes_images(g):
            raise ConfigError(
                f"generator.checkpoint={g.checkpoint}: a text-to-video model, which cannot take the image or "
                f"clip Physics-IQ conditions on (benchmark.mode={b.mode}); use an image-to-video checkpoint"
            )
        if b.mode == "v2v" and not generator_accepts_clips(g.kind):
            raise ConfigError(
                f"benchmark.mode=v2v needs a generator conditioned on a video clip, but "
                f"generator.kind={g.kind!r} takes a single image; use benchmark.mode=i2v "
                "or a clip-conditioned generator (e.g. MAGI-1)"
            )
        if "conform" in cfg.stages:
            self.check_frames(cfg)
        try:
            self.dataset = PhysicsIQDataset(b.root, b.descriptions)
            self.dataset.validate(g.fps)
        except DatasetError as exc:
            raise PipelineError(f"benchmark.root: {exc}") from None
        self.max_scenarios = b.max_scenarios
        self.mode = b.mode
        self.fps = g.fps
        self.prompts = b.prompts
        self.shipped_prompts = self._shipped_prompts(b)

    @staticmethod
    def _shipped_prompts(b) -> PhysicsIQDataset | None:
        """The dataset read with a prompt set it ships (``bpp``) as its descriptions; None for the
        original descriptions (``op`` or unset) and for a prompt-variant file."""
        from pipeline.benchmarks.physicsiq.layout import DatasetError, PhysicsIQDataset
        from pipeline.benchmarks.physicsiq.spec import PROMPT_SETS

        if b.prompts not in PROMPT_SETS:
            return None
        path = Path(b.root) / PROMPT_SETS[b.prompts]
        if not path.is_file():
            raise ConfigError(
                f"benchmark.prompts={b.prompts}: the dataset has no {PROMPT_SETS[b.prompts]} ({path} is missing)"
            )
        try:
            return PhysicsIQDataset(b.root, path)
        except DatasetError as exc:
            raise ConfigError(f"benchmark.prompts={b.prompts}: {exc}") from None

    @staticmethod
    def check_frames(cfg: Config) -> None:
        """The contract's 5 s at the generator's fps must fit in what the generator makes."""
        from pipeline.benchmarks.physicsiq.contract import frames_needed
        from pipeline.generators import generator_class

        g, drop = cfg.generator, cfg.conform.drop_first_frame
        try:
            need = frames_needed(g.fps)
        except ValueError:
            raise ConfigError(
                f"generator.fps={g.fps:g}: 5 s at this rate is not a whole number of frames, "
                "which the Physics-IQ contract needs"
            ) from None
        made = generator_class(g.kind).planned_frames(g, cfg.benchmark.mode)
        if made is not None and made - drop < need:
            raise ConfigError(
                f"generator.num_frames={g.num_frames}: candidates will have {made} frames"
                f"{', one fewer after conform.drop_first_frame' if drop else ''}; the Physics-IQ "
                f"contract needs {need} (5 s at {g.fps:g} fps)"
            )

    def items(self) -> list[Item]:
        from pipeline.benchmarks.prompts import PromptVariantError, load_prompt_variants
        from pipeline.items import Item

        chosen = self.dataset.items
        if self.max_scenarios is not None:
            keep = set(self.dataset.scenarios[: self.max_scenarios])
            chosen = [it for it in chosen if it.scenario in keep]
        prompts = {it.item_id: it.description for it in chosen}
        if self.shipped_prompts is not None:
            shipped = {it.item_id: it.description for it in self.shipped_prompts.items}
            missing = [it.item_id for it in chosen if not shipped.get(it.item_id)]
            if missing:
                raise ConfigError(f"benchmark.prompts={self.prompts}: no prompt for item(s) {', '.join(missing[:10])}")
            prompts = {it.item_id: shipped[it.item_id] for it in chosen}
        elif self.prompts not in (None, "op"):
            try:
                prompts = load_prompt_variants(self.prompts, chosen)
            except PromptVariantError as exc:
                raise ConfigError(f"benchmark.prompts: {exc}") from None
        return [
            Item(
                item_id=it.item_id,
                prompt=prompts[it.item_id],
                category=it.category,
                scenario=it.scenario,
                view=it.view,
                submission_name=it.generated_video_name,
                condition_source=str(self.condition_source(it).resolve()),
            )
            for it in chosen
        ]

    def condition_source(self, item) -> Path:
        """i2v: the switch frame. v2v: the conditioning clip shipped at the generator's fps, else
        the 30 FPS one (prepare then resamples it the way the ground truth is resampled)."""
        if self.mode == "i2v":
            return self.dataset.switch_frame(item)
        shipped = self.dataset.conditioning_clip(item, self.fps)
        if float(self.fps).is_integer() and shipped.is_file():  # "12FPS" holds 12, not 12.5 fps
            return shipped
        return self.dataset.conditioning_clip(item, 30)
