"""A small synthetic Physics-IQ dataset in the official layout, for tests and smoke runs.

Each scenario is a 2-D scene simulated with numpy (gravity and bounces, rolling with friction,
elastic collisions, a magnet, a damped pendulum) that stays still for roughly the 3 s of
conditioning and moves in the 5 s of testing. Three views are different crops/zooms of the same
world; take-2 re-runs the experiment with small jitter in start position, timing, velocity,
lighting and sensor noise, like a re-recording. The background is a static texture, so only the
moving objects produce motion masks. Lower fps clips are made by resample.py from the 30 FPS
files, which is how the real bucket's 8/16 FPS folders relate to 30 FPS. Real masks are not
shipped (the evaluator computes and caches them).

Command: ``python -m pipeline synthetic-data out=DIR`` (pipeline/cli/synthetic_data.py).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from pipeline.files import atomic_path

from .layout import VIEWS, PhysicsIQDataset, fps_folder
from .resample import resample_video
from .spec import PROMPT_SETS

FPS = 30
COND_S, TEST_S = 3, 5
N_FRAMES = (COND_S + TEST_S) * FPS
WORLD = (320.0, 180.0)  # world units; a view maps them onto the output pixels
FLOOR_Y = 150.0
G = 420.0  # world units / s^2
STATIC = "Static shot with no camera movement."
BPP_PREFIX = "A locked-off camera films a realistic, evenly lit scene."

# view -> (world point at the image centre, zoom): three cameras on the same scene
CAMERAS = {
    "perspective-left": ((145.0, 92.0), 1.12),
    "perspective-center": ((160.0, 90.0), 1.0),
    "perspective-right": ((178.0, 94.0), 1.08),
}

KINDS = [  # (name, category, description)
    (
        "ball-falls",
        "Solid Mechanics",
        "A red rubber ball hangs from a grabber tool above a wooden table in front of a patterned "
        "wall. The grabber lets go of the ball, which falls onto the table and bounces.",
    ),
    (
        "magnet-pulls-ball",
        "Magnetism",
        "A small steel ball rests on a wooden table next to a strong grey magnet. A hand removes a "
        "spacer and the ball is pulled towards the magnet.",
    ),
    (
        "blocks-collide",
        "Solid Mechanics",
        "Two wooden blocks sit on a smooth table. The blue block is pushed and slides into the "
        "orange block, which slides away after the collision.",
    ),
    (
        "ball-rolls",
        "Solid Mechanics",
        "A striped tennis ball lies on the left side of a wooden table. It is nudged and rolls "
        "to the right, slowing down because of friction.",
    ),
    (
        "pendulum",
        "Solid Mechanics",
        "A metal bob hangs from a string attached to a stand on a table. The bob is held to the "
        "side and released, swinging back and forth.",
    ),
]


@dataclass(frozen=True)
class SyntheticParams:
    scenarios: int = 4
    seed: int = 0
    width: int = 256
    height: int = 144
    fps: tuple[int, ...] = (8, 16)
    version: int = 1  # bump when the renderer changes


# --- physics --------------------------------------------------------------------------------
@dataclass
class Shape:
    kind: str  # "circle" | "rect" | "line"
    color: tuple[int, int, int]  # RGB
    xy: np.ndarray  # (N_FRAMES, 2) centre (or line start)
    size: tuple[float, ...]  # circle: (r,), rect: (w, h), line: (x1, y1) fixed end
    angle: np.ndarray | None = None  # rolling marker angle per frame


def _times() -> np.ndarray:
    return np.arange(N_FRAMES) / FPS


def _still(x: float, y: float) -> np.ndarray:
    return np.tile([x, y], (N_FRAMES, 1)).astype(np.float64)


def _integrate(t0: float, x0, v0, accel, dt: float = 1 / 600, bounce=None) -> np.ndarray:
    """Positions at the frame times; still before t0, explicit-Euler sub-steps after."""
    xs = np.tile(np.asarray(x0, np.float64), (N_FRAMES, 1))
    x, v = np.asarray(x0, np.float64).copy(), np.asarray(v0, np.float64).copy()
    t = t0
    for i, tf in enumerate(_times()):
        while t < tf:
            v = v + accel(x, v) * dt
            x = x + v * dt
            if bounce is not None:
                x, v = bounce(x, v)
            t += dt
        if tf >= t0:
            xs[i] = x
    return xs


def _scene(kind: str, rng: np.random.Generator) -> list[Shape]:
    """One take of a scenario; ``rng`` carries the take's jitter."""
    j = lambda s: float(rng.uniform(-s, s))  # noqa: E731
    t_rel = 3.0 + j(0.08)
    shapes: list[Shape] = []
    if kind == "ball-falls":
        r, x0, y0 = 11.0, 150.0 + j(2.0), 55.0 + j(2.0)

        def floor(x, v):
            if x[1] > FLOOR_Y - r and v[1] > 0:
                x = np.array([x[0], 2 * (FLOOR_Y - r) - x[1]])
                v = np.array([v[0], -0.88 * v[1]])
            return x, v

        xy = _integrate(t_rel, [x0, y0], [14.0 + j(2), 0.0], lambda x, v: np.array([0.0, G]), bounce=floor)
        shapes += [
            Shape("rect", (70, 70, 80), _still(x0, y0 - r - 14), (8.0, 22.0)),
            Shape("circle", (200, 40, 40), xy, (r,)),
        ]
    elif kind == "magnet-pulls-ball":
        r, mx = 11.0, 230.0
        x0 = 30.0 + j(3.0)

        def pull(x, v):
            d = max(mx - 18 - r - x[0], 1.0)
            return np.array([min(4e5 / (d + 60) ** 2, 900.0) - 0.5 * v[0], 0.0])

        def stop(x, v):
            if x[0] > mx - 18 - r:
                return np.array([mx - 18 - r, x[1]]), np.zeros(2)
            return x, v

        xy = _integrate(t_rel + 0.1, [x0, FLOOR_Y - r], [0.0, 0.0], pull, bounce=stop)
        shapes += [
            Shape("rect", (110, 110, 120), _still(mx, FLOOR_Y - 14), (36.0, 28.0)),
            Shape("circle", (60, 60, 75), xy, (r,)),
        ]
    elif kind == "blocks-collide":
        wa, wb, h = 26.0, 34.0, 24.0
        xa0, xb = 60.0 + j(3.0), 190.0
        va0, mu = 190.0 * (1 + j(0.05)), 60.0
        xs_a, xs_b = np.full(N_FRAMES, xa0), np.full(N_FRAMES, xb)
        xa, xbb, va, vb, ma, mb, dt = xa0, xb, va0, 0.0, 1.0, 1.6, 1 / 600
        t = t_rel
        for i, tf in enumerate(_times()):
            while t < tf:
                va -= np.sign(va) * min(abs(va), mu * dt)
                vb -= np.sign(vb) * min(abs(vb), mu * dt)
                xa, xbb = xa + va * dt, xbb + vb * dt
                if xbb - xa < (wa + wb) / 2 and va > vb:  # 1-D elastic collision
                    va, vb = (((ma - mb) * va + 2 * mb * vb) / (ma + mb), ((mb - ma) * vb + 2 * ma * va) / (ma + mb))
                t += dt
            if tf >= t_rel:
                xs_a[i], xs_b[i] = xa, xbb
        shapes += [
            Shape("rect", (40, 80, 200), np.stack([xs_a, np.full(N_FRAMES, FLOOR_Y - h / 2)], 1), (wa, h)),
            Shape("rect", (230, 140, 40), np.stack([xs_b, np.full(N_FRAMES, FLOOR_Y - h / 2)], 1), (wb, h)),
        ]
    elif kind == "ball-rolls":
        r = 12.0
        x0 = 50.0 + j(3.0)
        v0 = 150.0 * (1 + j(0.05))
        roll = lambda x, v: np.array([-45.0 * np.sign(v[0]) if abs(v[0]) > 1 else -v[0] * 20, 0.0])  # noqa: E731
        xy = _integrate(t_rel, [x0, FLOOR_Y - r], [v0, 0.0], roll)
        shapes += [Shape("circle", (210, 220, 60), xy, (r,), angle=(xy[:, 0] - x0) / r)]
    elif kind == "pendulum":
        px, py, length = 160.0, 30.0, 95.0
        th, w, dt, t = 0.75 + j(0.03), 0.0, 1 / 600, t_rel
        thetas = np.full(N_FRAMES, th)
        for i, tf in enumerate(_times()):
            while t < tf:
                w += (-(G / length) * np.sin(th) - 0.25 * w) * dt
                th += w * dt
                t += dt
            if tf >= t_rel:
                thetas[i] = th
        xy = np.stack([px + length * np.sin(thetas), py + length * np.cos(thetas)], 1)
        shapes += [
            Shape("rect", (60, 60, 60), _still(px, (py + FLOOR_Y) / 2), (6.0, FLOOR_Y - py)),
            Shape("line", (30, 30, 30), xy, (px, py)),
            Shape("circle", (150, 150, 170), xy, (10.0,)),
        ]
    else:
        raise ValueError(f"unknown scenario kind {kind}")
    return shapes


# --- rendering ------------------------------------------------------------------------------
def _texture(rng: np.random.Generator) -> np.ndarray:
    """Static world background (RGB float32, 2 px per world unit): wall + table, textured."""
    h, w = int(WORLD[1] * 2), int(WORLD[0] * 2)
    yy = np.arange(h)[:, None] / 2.0
    base = np.where(yy < FLOOR_Y, 1.0, 0.0)[..., None] * np.array([185, 180, 165]) + np.where(yy >= FLOOR_Y, 1.0, 0.0)[
        ..., None
    ] * np.array([150, 110, 70])
    base = np.broadcast_to(base, (h, w, 3)).astype(np.float32).copy()
    noise = cv2.resize(rng.normal(0, 1, (h // 8, w // 8)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    base += 14 * noise[..., None]
    base[::24, :, :] -= 25  # wallpaper stripes / table planks give the texture edges
    base[:, ::32, :] -= 18
    return np.clip(base, 0, 255)


def _camera(view: str, width: int, height: int) -> np.ndarray:
    (cx, cy), zoom = CAMERAS[view]
    k = zoom * width / WORLD[0]
    return np.array([[k, 0, width / 2 - k * cx], [0, k, height / 2 - k * cy]], np.float64)


def _render_video(
    shapes: list[Shape], bg_world: np.ndarray, view: str, width: int, height: int, gain: float, rng: np.random.Generator
) -> np.ndarray:
    cam = _camera(view, width, height)
    tex_cam = cam.copy()
    tex_cam[:, :2] /= 2.0  # the texture has 2 px per world unit
    bg = (
        cv2.warpAffine(bg_world, tex_cam, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT) * gain
    )
    noise_bank = rng.normal(0, 1.2, (8, height, width, 3)).astype(np.float32)
    k, shift = cam[0, 0], 4  # sub-pixel drawing with 4 fractional bits
    to_px = lambda p: tuple(int(round(v * 16)) for v in (cam[:, :2] @ p + cam[:, 2]))  # noqa: E731
    out = np.empty((N_FRAMES, height, width, 3), np.uint8)
    for i in range(N_FRAMES):
        img = bg.copy()
        for s in shapes:
            col = tuple(float(c * gain) for c in s.color)
            if s.kind == "circle":
                c = to_px(s.xy[i])
                cv2.circle(img, c, int(s.size[0] * k * 16), col, -1, cv2.LINE_AA, shift)
                if s.angle is not None:  # a stripe makes rolling visible
                    d = np.array([np.cos(s.angle[i]), np.sin(s.angle[i])]) * s.size[0]
                    cv2.line(
                        img,
                        to_px(s.xy[i] - d),
                        to_px(s.xy[i] + d),
                        (250, 250, 250),
                        max(1, int(k * 2)),
                        cv2.LINE_AA,
                        shift,
                    )
            elif s.kind == "rect":
                half = np.array(s.size) / 2
                cv2.rectangle(img, to_px(s.xy[i] - half), to_px(s.xy[i] + half), col, -1, cv2.LINE_AA, shift)
            else:
                cv2.line(img, to_px(np.array(s.size)), to_px(s.xy[i]), col, max(1, int(k)), cv2.LINE_AA, shift)
        img += noise_bank[rng.integers(len(noise_bank))]
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


# --- dataset --------------------------------------------------------------------------------
def scenario_names(n: int) -> list[tuple[str, str, str, str]]:
    """(kind, file name, category, description) of the first n scenarios."""
    out = []
    for i in range(n):
        kind, cat, desc = KINDS[i % len(KINDS)]
        suffix = "" if i < len(KINDS) else f"-v{i // len(KINDS) + 1}"
        out.append((kind, f"trimmed-{kind}{suffix}.mp4", cat, f"{desc} {STATIC}"))
    return out


def _expected_files(root: Path, params: SyntheticParams) -> list[Path]:
    try:
        ds = PhysicsIQDataset(root)
    except Exception:
        return [root / "descriptions.csv"]
    paths = [*ds.required_paths(), root / PROMPT_SETS["bpp"]]
    for it in ds.items:
        for take in (1, 2):
            paths.append(ds.full_video(it, FPS, take))
            for f in params.fps:
                paths += [ds.shipped_testing_clip(it, f, take), ds.conditioning_clip(it, f, take)]
    return paths


def is_complete(root: str | os.PathLike, params: SyntheticParams) -> bool:
    root = Path(root)
    meta = root / "synthetic.json"
    if not meta.is_file():
        return False
    try:
        stored = json.loads(meta.read_text())
    except ValueError:
        return False
    if stored != json.loads(json.dumps(asdict(params))):
        return False
    return len(pd.read_csv(root / "descriptions.csv")) == 6 * params.scenarios and all(
        p.is_file() for p in _expected_files(root, params)
    )


def generate(out: str | os.PathLike, params: SyntheticParams = SyntheticParams()) -> Path:
    """Write the dataset into ``out`` (idempotent for identical parameters)."""
    root = Path(out)
    if params.width % 2 or params.height % 2:
        raise ValueError(f"width and height must be even, got {params.width}x{params.height}")
    if is_complete(root, params):
        return root
    root.mkdir(parents=True, exist_ok=True)
    (root / "synthetic.json").unlink(missing_ok=True)  # written last: marks a finished dataset
    master = np.random.default_rng(params.seed)
    scen = scenario_names(params.scenarios)
    tasks = []
    for s_idx, (kind, name, _category, _description) in enumerate(scen):
        bg_seed, seed1, seed2 = (int(x) for x in master.integers(2**62, size=3))
        tasks += [(root, params, s_idx, kind, name, bg_seed, take, seed) for take, seed in ((1, seed1), (2, seed2))]
    workers = max(1, min(len(tasks), os.cpu_count() or 1, 4))
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_make_take, tasks))
    else:
        for t in tasks:
            _make_take(t)
    n_items = 3 * len(scen)
    rows = []
    for s_idx, (_kind, name, cat, desc) in enumerate(scen):
        for take in (1, 2):
            for v_idx, view in enumerate(VIEWS):
                item_id = f"{s_idx * 3 + v_idx + 1 + (take - 1) * n_items:04d}"
                rows.append(
                    {
                        "scenario": f"{item_id}_{view}_take-{take}_{name}",
                        "description": desc,
                        "category": cat,
                        "generated_video_name": f"{item_id}_{view}_{name}",
                    }
                )
    rows.sort(key=lambda r: r["scenario"])
    pd.DataFrame(rows).to_csv(root / "descriptions.csv", index=False)
    # the best-practice prompt set where the Verified dataset ships it (benchmark.prompts=bpp); its
    # sentences are this dataset's own, in the shipped file's layout
    bpp = root / PROMPT_SETS["bpp"]
    bpp.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{**r, "description": f"{BPP_PREFIX} {r['description']}"} for r in rows]).to_csv(bpp, index=False)
    (root / "synthetic.json").write_text(json.dumps(asdict(params), indent=2))
    return root


def _make_take(task: tuple) -> None:
    """Render and write the three views of one take of one scenario (a worker task)."""
    root, params, s_idx, kind, name, bg_seed, take, seed = task
    bg = _texture(np.random.default_rng(bg_seed))  # same background for both takes
    shapes = _scene(kind, np.random.default_rng(seed))
    trng = np.random.default_rng(seed + 1)
    gain = 1.0 + float(trng.uniform(-0.03, 0.03))
    n_items = 3 * params.scenarios
    for v_idx, view in enumerate(VIEWS):
        item_id = f"{s_idx * 3 + v_idx + 1 + (take - 1) * n_items:04d}"
        frames = _render_video(shapes, bg, view, params.width, params.height, gain, trng)
        _write_take(root, item_id, view, f"take-{take}", name, frames, params.fps)


def _fast_write(path: Path, frames: np.ndarray, fps: float) -> Path:
    """H.264 with x264's 'veryfast' preset: video_io's default preset made generation encoder-bound
    (~2x slower); quality is irrelevant for synthetic data as long as it is consistent."""
    import imageio_ffmpeg

    with atomic_path(path, suffix=".tmp.mp4") as tmp:
        gen = imageio_ffmpeg.write_frames(
            str(tmp),
            (frames.shape[2], frames.shape[1]),
            fps=fps,
            codec="libx264",
            quality=None,
            macro_block_size=2,
            ffmpeg_log_level="error",
            output_params=["-preset", "veryfast", "-crf", "16", "-threads", "1"],
        )
        gen.send(None)
        for frame in frames:
            gen.send(np.ascontiguousarray(frame))
        gen.close()
    return path


def _write_take(
    root: Path, item_id: str, view: str, take: str, scenario: str, frames: np.ndarray, fps_list: tuple[int, ...]
) -> None:
    cond_n = COND_S * FPS
    tail = f"{view}_{take}_{scenario}"
    _fast_write(root / "full-videos" / take / "30FPS" / f"{item_id}_full-videos_30FPS_{tail}", frames, FPS)
    for kind, clip in (("conditioning", frames[:cond_n]), ("testing", frames[cond_n:])):
        src = _fast_write(root / "split-videos" / kind / "30FPS" / f"{item_id}_{kind}-videos_30FPS_{tail}", clip, FPS)
        for f in fps_list:
            if f != FPS:
                resample_video(
                    src,
                    root / "split-videos" / kind / fps_folder(f) / f"{item_id}_{kind}-videos_{fps_folder(f)}_{tail}",
                    f,
                    writer=_fast_write,
                )
    if take == "take-1":
        stem = scenario[:-4]
        path = root / "switch-frames" / f"{item_id}_switch-frames_anyFPS_{view}_{stem}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(frames[cond_n - 1], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
