"""The official Physics-IQ dataset layout (google-deepmind/physics-IQ-benchmark: code/download_physics_iq_data.py).

Benchmark items are the take-1 rows of ``descriptions.csv``. Take-2 partners are found by
(scenario, view), never by ID arithmetic: the shipped CSV happens to use ID+198 but the official
code does not rely on it, and neither do we.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.errors import PipelineError

VIEWS: tuple[str, ...] = ("perspective-left", "perspective-center", "perspective-right")
TAKES: tuple[str, ...] = ("take-1", "take-2")
CSV_COLUMNS: tuple[str, ...] = ("scenario", "description", "category", "generated_video_name")
MASTER_FPS = 30


class DatasetError(PipelineError):
    """The dataset folder or its descriptions table does not match the official layout."""


@dataclass(frozen=True)
class BenchmarkItem:
    item_id: str  # "0001": take-1 ID, the prefix every generated file must carry
    scenario: str  # "trimmed-ball-falls.mp4" (the official code keeps the .mp4 suffix)
    view: str  # "perspective-left"
    category: str
    description: str
    generated_video_name: str  # "0001_perspective-left_trimmed-ball-falls.mp4"
    take2_id: str  # ID of the take-2 recording of the same scenario and view

    @property
    def scenario_stem(self) -> str:
        return self.scenario[:-4] if self.scenario.endswith(".mp4") else self.scenario


def fps_folder(fps: float) -> str:
    # The official driver names folders with int(fps), so 12.5 fps lives in "12FPS".
    return f"{int(fps)}FPS"


def _split_row_name(name: str) -> tuple[str, str, str, str]:
    parts = name.split("_", 3)
    if len(parts) != 4 or parts[2] not in TAKES or parts[1] not in VIEWS:
        raise DatasetError(
            f"descriptions.csv: cannot parse scenario entry {name!r} (expected ID_view_take_scenario.mp4)"
        )
    return parts[0], parts[1], parts[2], parts[3]


def find_descriptions(root: Path) -> Path:
    candidates = [
        root / "descriptions.csv",
        root.parent / "descriptions.csv",
        root.parent / "descriptions" / "descriptions.csv",
    ]
    for c in candidates:
        if c.is_file():
            return c
    raise DatasetError("descriptions.csv not found; looked at " + ", ".join(str(c) for c in candidates))


class PhysicsIQDataset:
    """A Physics-IQ dataset root (the folder called ``physics-IQ-benchmark`` upstream)."""

    def __init__(
        self,
        root: str | os.PathLike,
        descriptions: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"Physics-IQ dataset folder does not exist: {self.root}")
        self.descriptions_path = Path(descriptions) if descriptions else find_descriptions(self.root)
        if not self.descriptions_path.is_file():
            raise DatasetError(f"descriptions file does not exist: {self.descriptions_path}")
        # Derived files (resampled clips, masks) go here so the shipped folders stay pristine.
        self.cache_dir = Path(cache_dir) if cache_dir else self.root / ".cache"
        self.items: list[BenchmarkItem] = self._load_items()
        self._by_id = {it.item_id: it for it in self.items}

    def _load_items(self) -> list[BenchmarkItem]:
        df = pd.read_csv(self.descriptions_path, dtype=str, keep_default_na=False)
        missing = [c for c in CSV_COLUMNS if c not in df.columns]
        if missing:
            raise DatasetError(f"{self.descriptions_path}: missing columns {missing}")
        take2: dict[tuple[str, str], str] = {}
        rows = []
        for rec in df.to_dict("records"):
            item_id, view, take, scenario = _split_row_name(rec["scenario"])
            if take == "take-2":
                take2[(scenario, view)] = item_id
            else:
                rows.append((item_id, view, scenario, rec))
        items, unpaired = [], []
        for item_id, view, scenario, rec in rows:
            if (scenario, view) not in take2:
                unpaired.append(rec["scenario"])
                continue
            items.append(
                BenchmarkItem(
                    item_id,
                    scenario,
                    view,
                    rec["category"],
                    rec["description"],
                    rec["generated_video_name"],
                    take2[(scenario, view)],
                )
            )
        if unpaired:
            raise DatasetError(
                f"{self.descriptions_path}: no take-2 row for {len(unpaired)} take-1 rows, e.g. {unpaired[:5]}"
            )
        if not items:
            raise DatasetError(f"{self.descriptions_path}: no take-1 rows")
        return sorted(items, key=lambda it: it.item_id)

    def restrict(self, item_ids: list[str]) -> None:
        """Keep only ``item_ids`` (a smoke-run subset); whole scenarios only, since the score
        compares the three views of a scenario as one row."""
        wanted = set(item_ids)
        unknown = sorted(wanted - set(self._by_id))
        if unknown:
            raise DatasetError(f"item ids not in {self.descriptions_path}: {unknown[:10]}")
        kept = [it for it in self.items if it.item_id in wanted]
        partial = sorted(
            {it.scenario for it in kept}
            - {
                s
                for s in {it.scenario for it in kept}
                if all(o.item_id in wanted for o in self.items if o.scenario == s)
            }
        )
        if partial:
            raise DatasetError(f"a subset must hold all views of a scenario; incomplete: {partial[:5]}")
        self.items = kept
        self._by_id = {it.item_id: it for it in kept}

    # --- lookup -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def item(self, item_id: str) -> BenchmarkItem:
        try:
            return self._by_id[item_id]
        except KeyError:
            raise DatasetError(f"no benchmark item with id {item_id!r}") from None

    @property
    def scenarios(self) -> list[str]:
        """Scenario names in first-appearance (ID) order."""
        return list(dict.fromkeys(it.scenario for it in self.items))

    # --- paths --------------------------------------------------------------------------------
    @staticmethod
    def _take_id(item: BenchmarkItem, take: int) -> tuple[str, str]:
        if take not in (1, 2):
            raise ValueError(f"take must be 1 or 2, got {take}")
        return (item.item_id, "take-1") if take == 1 else (item.take2_id, "take-2")

    def switch_frame(self, item: BenchmarkItem) -> Path:
        return (
            self.root / "switch-frames" / (f"{item.item_id}_switch-frames_anyFPS_{item.view}_{item.scenario_stem}.jpg")
        )

    def _split_name(self, item: BenchmarkItem, kind: str, fps: float, take: int) -> str:
        tid, tname = self._take_id(item, take)
        return f"{tid}_{kind}-videos_{fps_folder(fps)}_{item.view}_{tname}_{item.scenario}"

    def conditioning_clip(self, item: BenchmarkItem, fps: float = MASTER_FPS, take: int = 1) -> Path:
        return (
            self.root
            / "split-videos"
            / "conditioning"
            / fps_folder(fps)
            / self._split_name(item, "conditioning", fps, take)
        )

    def shipped_testing_clip(self, item: BenchmarkItem, fps: float = MASTER_FPS, take: int = 1) -> Path:
        return self.root / "split-videos" / "testing" / fps_folder(fps) / self._split_name(item, "testing", fps, take)

    def resampled_testing_clip(self, item: BenchmarkItem, fps: float, take: int = 1) -> Path:
        return (
            self.cache_dir / "split-videos" / "testing" / fps_folder(fps) / self._split_name(item, "testing", fps, take)
        )

    def testing_clip(self, item: BenchmarkItem, fps: float = MASTER_FPS, take: int = 1) -> Path:
        """Shipped clip if present, else where resample.ensure_testing_clips puts it."""
        shipped = self.shipped_testing_clip(item, fps, take)
        return shipped if shipped.is_file() else self.resampled_testing_clip(item, fps, take)

    def full_video(self, item: BenchmarkItem, fps: float = MASTER_FPS, take: int = 1) -> Path:
        tid, tname = self._take_id(item, take)
        return (
            self.root
            / "full-videos"
            / tname
            / fps_folder(fps)
            / f"{tid}_full-videos_{fps_folder(fps)}_{item.view}_{tname}_{item.scenario}"
        )

    def real_mask(self, item: BenchmarkItem, fps: float, take: int = 1) -> Path:
        tid, tname = self._take_id(item, take)
        return (
            self.root
            / "video-masks"
            / "real"
            / fps_folder(fps)
            / f"{tid}_video-masks_{fps_folder(fps)}_{item.view}_{tname}_{item.scenario}"
        )

    # --- validation ---------------------------------------------------------------------------
    def required_paths(self, fps: float | None = None) -> list[Path]:
        """Files evaluation and generation need: switch frames, 30 FPS clips, and the fps clips.

        Testing clips at a non-shipped fps are only required when their folder exists (a partial
        download); otherwise they are rebuilt from 30 FPS like the official fps_changer does.
        """
        paths: list[Path] = []
        for it in self.items:
            paths.append(self.switch_frame(it))
            paths.append(self.conditioning_clip(it, MASTER_FPS))
            for take in (1, 2):
                paths.append(self.shipped_testing_clip(it, MASTER_FPS, take))
        if fps is not None and fps_folder(fps) != fps_folder(MASTER_FPS):
            if (self.root / "split-videos" / "testing" / fps_folder(fps)).is_dir():
                for it in self.items:
                    for take in (1, 2):
                        paths.append(self.shipped_testing_clip(it, fps, take))
        return paths

    def validate(self, fps: float | None = None) -> None:
        missing = [p for p in self.required_paths(fps) if not p.is_file()]
        if missing:
            shown = "\n  ".join(str(p.relative_to(self.root)) for p in missing[:10])
            more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise DatasetError(
                f"Physics-IQ dataset at {self.root} is incomplete: {len(missing)} file(s) missing:\n  {shown}{more}"
            )
