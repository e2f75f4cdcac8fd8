"""Sample images made by code, for ``gradfx demo`` and for trying effects without a photo at hand.

No files are shipped, so there is no licence to worry about: ``landscape`` is a sky, sun, mountains, hills, a
lake and trees; ``painting`` is a swirling, stroke-textured "starry night" in blues and yellows, and ``strokes``
short brush strokes in many colours, for use as style images. All are deterministic float32 H x W x 3 arrays
in [0, 1]. NumPy and Pillow only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .save import save_image


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return y / max(h - 1, 1), x / max(w - 1, 1)


def _mix(img: np.ndarray, mask: np.ndarray, colour: np.ndarray | tuple[float, float, float]) -> np.ndarray:
    m = np.clip(mask, 0.0, 1.0)[..., None]
    return img * (1 - m) + m * np.asarray(colour, np.float32)


def _edge(d: np.ndarray, px: float) -> np.ndarray:
    """A soft step: 1 where ``d`` < 0, 0 where ``d`` > 0, over about ``px`` (in the units of d)."""
    return 1.0 / (1.0 + np.exp(np.clip(d / max(px, 1e-6), -50, 50)))


def landscape(size: int = 256, seed: int = 0) -> np.ndarray:
    """A landscape: gradient sky, sun, two mountain ranges, green hills, a lake with reflections, trees."""
    h, w = size, int(size * 4 / 3)
    rng = np.random.default_rng(seed)
    y, x = _grid(h, w)
    aa = 1.5 / h
    sky_top, sky_low = np.array([0.18, 0.35, 0.75]), np.array([0.95, 0.75, 0.55])
    img = (sky_top * (1 - y[..., None] / 0.6) + sky_low * (y[..., None] / 0.6)).astype(np.float32)
    img = np.clip(img, 0, 1)
    sun = np.hypot((x - 0.72) * w / h, y - 0.22) - 0.08
    img = _mix(img, _edge(sun, aa), (1.0, 0.93, 0.6))
    img = _mix(img, 0.35 * np.exp(-np.maximum(sun, 0) / 0.08), (1.0, 0.85, 0.5))
    for base, amp, colour, k in ((0.42, 0.16, (0.42, 0.40, 0.55), 3.0), (0.52, 0.10, (0.30, 0.35, 0.42), 5.0)):
        phase = rng.random(3) * 6.28
        ridge = base - amp * (0.6 * np.abs(np.sin(k * x * 3.14 + phase[0])) + 0.3 * np.sin(2.3 * k * x + phase[1])
                              + 0.1 * np.sin(9 * k * x + phase[2]))
        img = _mix(img, _edge(ridge - y, aa), colour)
        snow = (1 - _edge(ridge + 0.03 - y, aa)) * _edge(ridge - y, aa) * (ridge < base - amp * 0.45)
        img = _mix(img, 0.8 * snow, (0.95, 0.95, 1.0))
    hills = 0.62 - 0.05 * np.sin(4.0 * x + 1.0) - 0.03 * np.sin(11.0 * x)
    grass = np.stack([0.25 + 0.1 * y, 0.55 - 0.15 * y, 0.2 + 0 * y], -1)
    img = img * (1 - _edge(hills - y, aa)[..., None]) + grass * _edge(hills - y, aa)[..., None]
    lake = np.hypot((x - 0.35) / 0.28, (y - 0.85) / 0.08) - 1.0
    reflection = img[np.clip((2 * 0.78 - y) * (h - 1), 0, h - 1).astype(int), (x * (w - 1)).astype(int)]
    water = 0.55 * reflection + 0.45 * np.array([0.2, 0.4, 0.7])
    water = water * (0.9 + 0.1 * np.sin(y[..., None] * h * 1.3))
    lm = _edge(lake, 0.02)[..., None]
    img = img * (1 - lm) + water * lm
    for _ in range(9):
        tx, ty = 0.55 + 0.4 * rng.random(), 0.66 + 0.25 * rng.random()
        th, tw = 0.10 + 0.08 * rng.random(), 0.035 + 0.02 * rng.random()
        inside = (y < ty) & (y > ty - th) & (np.abs(x - tx) * w / h < tw * (ty - y) / th)
        img = _mix(img, inside.astype(np.float32), (0.08, 0.28 + 0.1 * rng.random(), 0.12))
        trunk = (y >= ty) & (y < ty + 0.03) & (np.abs(x - tx) * w / h < 0.006)
        img = _mix(img, trunk.astype(np.float32), (0.35, 0.22, 0.12))
    img += 0.02 * rng.standard_normal(img.shape).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def painting(size: int = 256, seed: int = 1) -> np.ndarray:
    """A "starry night" style image: swirls of blue and yellow with brush-stroke texture and glowing stars."""
    h = w = size
    rng = np.random.default_rng(seed)
    y, x = _grid(h, w)
    field = np.zeros((h, w), np.float32)
    for _ in range(5):  # vortices: sin(n * angle + twist * distance) is continuous for a whole n
        cx, cy, r = rng.random(), 0.15 + 0.5 * rng.random(), 0.12 + 0.2 * rng.random()
        d = np.hypot(x - cx, y - cy)
        spin = 1 if rng.random() < 0.5 else -1
        field += np.exp(-d / r) * np.sin(2 * np.arctan2(y - cy, x - cx) + spin * 14 * d) * 0.6
    strokes = np.sin(40 * (x + 0.3 * np.sin(6 * y)) + 8 * field) * np.sin(37 * (y + 0.2 * np.sin(5 * x)) - 6 * field)
    t = 0.5 + 0.5 * np.sin(9 * field + 3 * y)
    deep, mid, light = np.array([0.05, 0.12, 0.38]), np.array([0.18, 0.42, 0.75]), np.array([0.95, 0.85, 0.35])
    img = np.where(t[..., None] < 0.6, deep + (mid - deep) * (t[..., None] / 0.6),
                   mid + (light - mid) * ((t[..., None] - 0.6) / 0.4))
    img = img * (0.85 + 0.15 * strokes[..., None])
    for _ in range(7):
        sx, sy, sr = rng.random(), 0.6 * rng.random(), 0.02 + 0.03 * rng.random()
        d = np.hypot(x - sx, y - sy)
        img = _mix(img, np.exp(-(d / sr) ** 2) + 0.4 * np.exp(-d / (3 * sr)), (1.0, 0.95, 0.6))
    ground = 0.82 + 0.05 * np.sin(7 * x)
    img = _mix(img, _edge(ground - y, 1.5 / h), (0.08, 0.1, 0.16))
    return np.clip(img, 0, 1).astype(np.float32)


def strokes(size: int = 256, seed: int = 2) -> np.ndarray:
    """A second style image: short brush strokes in warm and cool colours over a dark ground, each turned along
    a swirling field (Pillow draws them)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), (30, 40, 70))
    draw = ImageDraw.Draw(img)
    palette = ((240, 200, 60), (230, 120, 40), (60, 110, 200), (120, 180, 230), (250, 240, 210), (40, 70, 140),
               (200, 60, 50))
    for _ in range(round(900 * (size / 256) ** 2)):
        x, y = rng.random(2) * size
        angle = np.sin(x / size * 6.0) + 1.5 * np.cos(y / size * 5.0)
        half = size * (0.03 + 0.05 * rng.random()) / 2
        dx, dy = np.cos(angle) * half, np.sin(angle) * half
        draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=palette[rng.integers(len(palette))],
                  width=max(2, size // 80))
    return np.asarray(img, np.float32) / np.float32(255.0)


@dataclass
class MovingScene:
    """A generated video with its true motion: ``frames`` (T x H x W x 3 in [0, 1]); ``backward[t]`` (H x W x 2,
    x then y) says where each pixel of frame t was in frame t - 1 (``backward[0]`` is zeros); ``valid[t]``
    (H x W bool) marks the pixels of frame t that were visible in frame t - 1 (not disoccluded, not from
    outside the picture)."""

    frames: np.ndarray
    backward: np.ndarray
    valid: np.ndarray


def moving_scene(frames: int = 24, size: int = 128, *, pan: tuple[int, int] = (2, 1),
                 velocity: tuple[float, float] = (-3.0, 1.0), seed: int = 0) -> MovingScene:
    """A camera panning across :func:`landscape` by ``pan`` (x, y) pixels per frame while a striped disc
    moves across the view by ``velocity`` (x, y) pixels per frame: the test scene for temporal consistency,
    with the true backward flow of every frame (background ``+pan``, disc ``-velocity``)."""
    px, py = pan
    vx, vy = velocity
    travel_x, travel_y = abs(px) * (frames - 1), abs(py) * (frames - 1)
    base = landscape(max(size + travel_y, (3 * (size + travel_x) + 3) // 4), seed)
    h, w = size, size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    radius = size * 0.12
    cx0 = w * 0.75 if vx < 0 else w * 0.25
    cy0 = h * 0.35 if vy > 0 else h * 0.65
    out = np.empty((frames, h, w, 3), np.float32)
    backward = np.zeros((frames, h, w, 2), np.float32)
    valid = np.zeros((frames, h, w), bool)
    ox0 = 0 if px >= 0 else travel_x
    oy0 = 0 if py >= 0 else travel_y
    for t in range(frames):
        ox, oy = ox0 + px * t, oy0 + py * t
        img = base[oy : oy + h, ox : ox + w].copy()
        cx, cy = cx0 + vx * t, cy0 + vy * t
        d = np.hypot(x - cx, y - cy) - radius
        stripes = 0.5 + 0.5 * np.sin(((x - cx) + 0.5 * (y - cy)) * (2 * np.pi / 7))
        disc_rgb = np.stack([0.9 + 0.1 * stripes, 0.35 + 0.35 * stripes, 0.1 + 0 * stripes], -1)
        m = _edge(d, 0.75)[..., None]
        out[t] = img * (1 - m) + disc_rgb * m
        disc = d < 1.5  # the disc and its anti-aliased rim
        if t:
            backward[t] = np.where(disc[..., None], np.float32([-vx, -vy]), np.float32([px, py]))
            sx, sy = x + backward[t, ..., 0], y + backward[t, ..., 1]
            inside = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
            # background that the disc covered in the previous frame was not visible then
            was_hidden = np.hypot(sx - (cx - vx), sy - (cy - vy)) - radius < 1.5
            valid[t] = inside & (disc | ~was_hidden)
    return MovingScene(np.clip(out, 0, 1), backward, valid)


SAMPLES: dict[str, Callable[..., np.ndarray]] = {"landscape": landscape, "painting": painting}


def write_samples(folder: str | os.PathLike, size: int = 256) -> dict[str, Path]:
    """Write every sample as ``<name>.png`` in ``folder`` (created if missing); returns name -> path."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    return {name: save_image(out / f"{name}.png", make(size)) for name, make in SAMPLES.items()}


__all__ = ["landscape", "painting", "moving_scene", "MovingScene", "write_samples", "SAMPLES"]
