"""conform: the chosen video cut to the benchmark contract (exactly 5.000 s at one fps, named
``NNNN_<view>_<scenario>.mp4``), written as a copy: the generator's files are never renamed or
modified in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.stages.base import Output, Stage
from pipeline.store import Record
from pipeline.video_io import check_video, read_video

if TYPE_CHECKING:
    from pipeline.generators.base import GeneratorConfig

SUBMISSION = "submission"


@dataclass
class ConformConfig:
    drop_first_frame: bool = True  # i2v outputs start with the condition frame itself


def submission_dir(store):
    """The folder of the conformed videos: what the benchmark scores and the leaderboard gets."""
    return store.outputs_dir("conform") / SUBMISSION


@dataclass(frozen=True)
class ConformSections:
    """The config sections conform reads."""

    generator: GeneratorConfig
    conform: ConformConfig


class Conform(Stage[ConformSections]):
    name = "conform"
    sections = ConformSections
    upstream = ("select",)

    def run(self, item_id: str) -> Output:
        from pipeline.benchmarks.physicsiq.contract import conform_frames, write_submission_video

        item = self.manifest.get(item_id)
        chosen = self.store.require("select", item_id).data
        generated, _ = read_video(self.store.path(chosen["video"]))
        fps, drop = self.cfg.generator.fps, self.cfg.conform.drop_first_frame
        frames = conform_frames(generated, fps, drop_first=drop)
        path = write_submission_video(submission_dir(self.store) / item.submission_name, frames, fps)
        return Output(
            outputs={"video": self.store.rel(path)},
            data={
                "frames": len(frames),
                "fps": fps,
                "dropped_first_frame": drop,
                # what the generator made and what was cut from its end to keep 5 s in real time
                # (never resampled: a longer clip squeezed into 5 s would speed its physics up)
                "generated_frames": len(generated),
                "trimmed_frames": len(generated) - int(drop) - len(frames),
            },
        )

    def validate(self, record: Record) -> None:
        from pipeline.benchmarks.physicsiq.contract import DURATION_S, DURATION_TOL_S, frames_needed

        fps = self.cfg.generator.fps
        path = self.store.path(record.outputs["video"])
        info = check_video(path, num_frames=frames_needed(fps), fps=fps)
        if abs(info.duration - DURATION_S) > DURATION_TOL_S:
            raise ValueError(f"{path}: {info.duration:.4f} s, not {DURATION_S} s")
