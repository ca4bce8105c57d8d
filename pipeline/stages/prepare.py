"""prepare: the condition each item is generated from, at the generator's size.

For Physics-IQ i2v (``benchmark.mode=i2v``) that is the switch frame, written as a PNG; for v2v
(``benchmark.mode=v2v``) the 3 s conditioning clip at the generator's fps, written as an mp4.
Frames are resized preserving aspect and centre-cropped (the default, so objects keep their
shapes) or stretched (``prepare.resize``). Mode, resize, size, frame count, fps, source and the
prompt (with the file it came from) are recorded with the item. The files' format is
``pipeline/conditions.py``, which the sample stage reads them with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.conditions import decode_png, encode_png
from pipeline.fields import one_of, setting
from pipeline.files import atomic_write_bytes
from pipeline.stages.base import Output, Stage
from pipeline.store import Record

if TYPE_CHECKING:
    from pipeline.benchmarks.base import BenchmarkConfig
    from pipeline.generators.base import GeneratorConfig


@dataclass
class PrepareConfig:
    resize: str = setting("crop", check=one_of("crop", "stretch"))


@dataclass(frozen=True)
class PrepareSections:
    """The config sections prepare reads."""

    generator: GeneratorConfig
    benchmark: BenchmarkConfig
    prepare: PrepareConfig


class Prepare(Stage[PrepareSections]):
    name = "prepare"
    sections = PrepareSections

    def run(self, item_id: str) -> Output:
        from pipeline.benchmarks.physicsiq.contract import condition_clip_from_file, condition_image

        item = self.manifest.get(item_id)
        gen = self.cfg.generator
        mode, resize = self.cfg.benchmark.mode, self.cfg.prepare.resize
        data: dict[str, Any] = {
            "prompt": item.prompt,
            "prompt_source": self.cfg.benchmark.prompts or "descriptions.csv",
            "mode": mode,
            "resize": resize,
            "size": [gen.width, gen.height],
            "source": item.condition_source,
        }
        if mode == "v2v":
            from pipeline.video_io import write_video

            clip = condition_clip_from_file(item.condition_source, gen.fps, gen.width, gen.height, mode=resize)
            path = write_video(self.store.outputs_dir(self.name) / f"{item_id}.mp4", clip, gen.fps, quality=10)
            data.update(frames=len(clip), fps=gen.fps)
        else:
            image = condition_image(item.condition_source, gen.width, gen.height, mode=resize)
            path = self.store.outputs_dir(self.name) / f"{item_id}.png"
            atomic_write_bytes(path, encode_png(image))
            data.update(frames=1)
        return Output(outputs={"condition": self.store.rel(path)}, data=data)

    def validate(self, record: Record) -> None:
        gen = self.cfg.generator
        path = self.store.path(record.outputs["condition"])
        if record.data.get("mode", "i2v") == "v2v":
            from pipeline.video_io import check_video

            info = check_video(path, num_frames=record.data["frames"], fps=gen.fps)
            shape = (info.height, info.width)
        else:
            shape = decode_png(path).shape[:2]
        if shape != (gen.height, gen.width):
            raise ValueError(f"condition {shape} is not {gen.height}x{gen.width}")
