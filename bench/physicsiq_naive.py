"""The plain way to compute the Physics-IQ score: the baseline bench/physicsiq_eval.py times.

One process, one frame at a time, one video at a time, nothing cached, in the official order of
operations (google-deepmind/physics-IQ-benchmark: code/): validate the folder (container duration, fps), make the motion
masks of every real testing clip, then of every generated video, each written as grayscale mp4v
into a scratch folder; then for every scenario and view decode the take-1/take-2/generated clips
and the three mask videos again, resize every frame to the take-1 size // 4, normalise / binarise
frame by frame, and compute the metrics with per-frame loops. The per-model CSV, score, category
table and plot are made by the same writers as the fast evaluator (pipeline.benchmarks.physicsiq
.score), so the two can be compared number for number.

Deliberately not copied from the official code: it decodes every video to the end even when it
needs one frame or the first 5 s; this baseline stops reading at the frames it needs.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from pipeline.benchmarks.physicsiq import iq_score as sc
from pipeline.benchmarks.physicsiq.layout import VIEWS, PhysicsIQDataset
from pipeline.video_io import probe_video


# --- masks, frame by frame ------------------------------------------------------------------------
def make_mask_video(src: Path, dst: Path) -> None:
    cap = cv2.VideoCapture(str(src))
    fps = round(cap.get(cv2.CAP_PROP_FPS))
    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    width, height = width - width % 2, height - height % 2
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height), isColor=False)
    ok, frame = cap.read()
    gray = cv2.GaussianBlur(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    background = gray.astype("float")
    out.write(np.zeros_like(gray)[:height, :width])
    kernel = np.ones((5, 5), np.uint8)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        gray = cv2.GaussianBlur(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (5, 5), 0)
        cv2.accumulateWeighted(gray, background, 0.3)
        diff = cv2.absdiff(gray, cv2.convertScaleAbs(background))
        _, mask = cv2.threshold(diff, 10, 255, cv2.THRESH_BINARY)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
        out.write(np.ascontiguousarray(mask[:height, :width]))
    cap.release()
    out.release()


# --- loading, frame by frame ----------------------------------------------------------------------
def load_frames(path: Path, end: float, size=None, normalize=True) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames, idx = [], 0
    while idx < end:
        ok, frame = cap.read()
        if not ok:
            break
        if size is not None:
            frame = cv2.resize(frame, size)
        if normalize:
            frame = frame / 255.0
        frames.append(frame)
        idx += 1
    cap.release()
    return frames


# --- metrics, frame by frame ----------------------------------------------------------------------
def iou_per_frame(masks1, masks2) -> list[float]:
    values = []
    for m1, m2 in zip(masks1, masks2):
        inter = np.logical_and(m1, m2).sum()
        union = np.logical_or(m1, m2).sum()
        values.append(1.0 if union == 0 else float(inter / union))
    return values


def mse_per_frame(video1, video2) -> list[float]:
    if len(video1) != len(video2):
        raise ValueError("videos have different frame counts")
    return [float(np.mean((f1.astype(np.float32) - f2.astype(np.float32)) ** 2)) for f1, f2 in zip(video1, video2)]


def spatial_mask(masks) -> np.ndarray:
    return (np.max(masks, axis=0) > 0).astype(np.uint8)


def weighted_mask(masks) -> np.ndarray:
    return np.sum(masks, axis=0, dtype=np.uint16) / len(masks)


def weighted_iou_valid(w1, w2) -> float:
    inter, union = np.minimum(w1, w2), np.maximum(w1, w2)
    valid = union > 0
    if np.sum(valid) == 0:
        return 1.0
    return float(np.sum(inter[valid]) / np.sum(union[valid]))


def view_metrics(take1, take2, gen, mask1, mask2, maskg, fps) -> dict:
    end = fps * 5
    first = load_frames(take1, 1, normalize=False)[0]
    size = (first.shape[1] // 4, first.shape[0] // 4)
    r1, g, r2 = (load_frames(p, end, size) for p in (take1, gen, take2))
    b1, b2, bg = (
        [(m > 127).astype(np.uint8) for m in load_frames(p, end, size, normalize=False)] for p in (mask1, mask2, maskg)
    )
    s1, s2, sg = spatial_mask(b1), spatial_mask(b2), spatial_mask(bg)
    w1, w2, wg = weighted_mask(b1), weighted_mask(b2), weighted_mask(bg)
    union = np.maximum(w1, w2)
    variance_weighted = 1.0 if np.sum(union) == 0 else float(np.sum(np.minimum(w1, w2)) / np.sum(union))
    if not (len(r1) == len(r2) == len(g) == len(b1) == len(b2) == len(bg)):
        raise ValueError(f"frame counts differ: {take1}, {take2}, {gen}")
    return {
        "v1_mse": mse_per_frame(r1, g),
        "v2_mse": mse_per_frame(r2, g),
        "variance_spatial": iou_per_frame([s1], [s2])[0],
        "variance_weighted_spatial": variance_weighted,
        "variance_spatiotemporal_iou": iou_per_frame(b1, b2),
        "variance_mse": mse_per_frame(r1, r2),
        "spatiotemporal_iou_v1": iou_per_frame(b1, bg),
        "spatiotemporal_iou_v2": iou_per_frame(b2, bg),
        "spatial_iou_v1": iou_per_frame([s1], [sg])[0],
        "spatial_iou_v2": iou_per_frame([s2], [sg])[0],
        "weighted_spatial_iou_v1": weighted_iou_valid(w1, wg),
        "weighted_spatial_iou_v2": weighted_iou_valid(w2, wg),
    }


# --- the driver -----------------------------------------------------------------------------------
def evaluate_naive(dataset_root, generated_dir, output_dir, item_ids=None, model_name=None):
    """Score one folder; returns (score components, path of the results CSV)."""
    dataset = PhysicsIQDataset(dataset_root)
    if item_ids is not None:
        dataset.restrict(item_ids)
    generated_dir, output_dir = Path(generated_dir), Path(output_dir)
    by_id = {m.group(1): p for p in sorted(generated_dir.glob("*.mp4")) if (m := re.match(r"(\d{4})_", p.name))}
    gen = {it.item_id: by_id[it.item_id] for it in dataset}
    rates = set()
    for path in gen.values():  # validation: 5.000 s, one fps
        if not math.isclose(probe_video(path).duration, 5.0, abs_tol=0.001):
            raise ValueError(f"{path}: not 5 s long")
        cap = cv2.VideoCapture(str(path))
        rates.add(cap.get(cv2.CAP_PROP_FPS))
        cap.release()
    if len(rates) != 1:
        raise ValueError(f"mixed fps {rates}")
    fps = rates.pop()
    scratch = Path(tempfile.mkdtemp(prefix="piq-naive-"))
    try:
        real_masks, gen_masks = {}, {}
        for it in dataset:  # real masks first, then generated, as the official driver
            for take in (1, 2):
                real_masks[it.item_id, take] = scratch / f"real-{it.item_id}-{take}.mp4"
                make_mask_video(dataset.testing_clip(it, fps, take), real_masks[it.item_id, take])
        for it in dataset:
            gen_masks[it.item_id] = scratch / f"gen-{it.item_id}.mp4"
            make_mask_video(gen[it.item_id], gen_masks[it.item_id])
        rows = {s: {"scenario": s} for s in dataset.scenarios}
        for scenario in dataset.scenarios:
            for view in VIEWS:
                it = next(i for i in dataset if i.scenario == scenario and i.view == view)
                metrics = view_metrics(
                    dataset.testing_clip(it, fps, 1),
                    dataset.testing_clip(it, fps, 2),
                    gen[it.item_id],
                    real_masks[it.item_id, 1],
                    real_masks[it.item_id, 2],
                    gen_masks[it.item_id],
                    fps,
                )
                rows[scenario].update({f"{k}_{view}": v for k, v in metrics.items()})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    name = model_name or generated_dir.name
    csv = sc.write_results_csv(sc.rows_to_frame(list(rows.values())), output_dir / f"{name}.csv")
    table = sc.read_results_csv(csv)
    components = sc.physics_iq_score(table)
    categories = sc.category_table(table, {it.scenario: it.category for it in dataset})
    sc.write_score_json(
        output_dir / f"{name}_metrics.json",
        components,
        sc.per_view_score(table),
        categories,
        {"model": name, "fps": fps},
    )
    sc.plot_categories(output_dir / f"{name}_categories.png", categories, components.score, name)
    return components, csv
