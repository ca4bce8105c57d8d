"""prepare: the condition each item is generated from, at the generator's size.

For Physics-IQ i2v that is the switch frame, resized preserving aspect and centre-cropped (the
default, so objects keep their shapes) or stretched; the choice is recorded with the item.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.stages.base import Output, Stage
from pipeline.store import Record, atomic_write_bytes


@dataclass
class PrepareConfig:
    resize: str = "crop"  # crop | stretch


def encode_png(rgb) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", rgb[..., ::-1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def decode_png(path) -> "object":
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return bgr[..., ::-1].copy()


class Prepare(Stage):
    name = "prepare"

    def run(self, item_id: str) -> Output:
        from pipeline.benchmarks.physicsiq.contract import condition_image

        item = self.manifest.get(item_id)
        gen = self.cfg.generator
        image = condition_image(item.condition_source, gen.width, gen.height, mode=self.cfg.prepare.resize)
        path = self.store.outputs_dir(self.name) / f"{item_id}.png"
        atomic_write_bytes(path, encode_png(image))
        return Output(
            outputs={"condition": self.store.rel(path)},
            data={"prompt": item.prompt, "resize": self.cfg.prepare.resize,
                  "size": [gen.width, gen.height], "source": item.condition_source},
        )

    def validate(self, record: Record) -> None:
        image = decode_png(self.store.path(record.outputs["condition"]))
        gen = self.cfg.generator
        if image.shape[:2] != (gen.height, gen.width):
            raise ValueError(f"condition {image.shape[:2]} is not {gen.height}x{gen.width}")
