"""Images in a terminal without a graphics protocol: half-cell blocks.

Each character cell shows two pixels stacked: ``'▀'`` with the upper pixel as the foreground colour and the
lower one as the background. :class:`HalfBlocks` is a Rich renderable, so it works in any Textual widget and
in plain Rich output. Nothing here imports Textual.
"""

from __future__ import annotations

import numpy as np
from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

UPPER_HALF = "▀"


def fit(width: int, height: int, cols: int, rows: int) -> tuple[int, int]:
    """The largest (cols, pixel rows) that show a ``width`` x ``height`` image in ``cols`` x ``rows`` cells
    with its aspect ratio kept (a cell is one pixel wide and two pixels tall)."""
    if width <= 0 or height <= 0 or cols <= 0 or rows <= 0:
        return 0, 0
    scale = min(cols / width, 2 * rows / height)
    return max(1, min(cols, round(width * scale))), max(1, min(2 * rows, round(height * scale)))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """H x W x 3 (or a batch: the first image; or H x W grey) floats in [0, 1] -> uint8 RGB."""
    a = np.asarray(image)
    if a.ndim == 4:
        a = a[0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    a = a[..., :3]
    if a.dtype != np.uint8:
        a = (np.clip(np.nan_to_num(a.astype(np.float32)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return a


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize uint8 RGB to ``width`` x ``height`` (box filter when shrinking: no aliasing sparkle)."""
    from PIL import Image

    if image.shape[1] == width and image.shape[0] == height:
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BOX
                                                    if width < image.shape[1] else Image.Resampling.BILINEAR))


def shrink(image: np.ndarray, longest: int = 320) -> np.ndarray:
    """uint8 RGB no larger than ``longest`` on its longest side: what the engine thread hands the UI."""
    a = to_uint8(image)
    h, w = a.shape[:2]
    if max(h, w) <= longest:
        return np.ascontiguousarray(a)
    scale = longest / max(h, w)
    return resize(a, max(1, round(w * scale)), max(1, round(h * scale)))


class HalfBlocks:
    """A Rich renderable drawing an RGB image in ``cols`` x ``rows`` cells (centred, aspect kept)."""

    def __init__(self, image: np.ndarray, cols: int, rows: int, background: str = "black") -> None:
        self.cols, self.rows = max(cols, 0), max(rows, 0)
        self.background = Color.parse(background)
        a = to_uint8(image)
        w, h = fit(a.shape[1], a.shape[0], self.cols, self.rows)
        self.pixels = resize(a, w, h) if w and h else np.zeros((0, 0, 3), np.uint8)

    def lines(self) -> list[list[Segment]]:
        """One list of segments per terminal row, each exactly ``cols`` cells wide."""
        px = self.pixels
        h, w = px.shape[:2]
        if h % 2:
            px = np.concatenate([px, np.full((1, w, 3), self.background.get_truecolor(), np.uint8)])
        img_rows = px.shape[0] // 2
        top_pad = (self.rows - img_rows) // 2
        left = (self.cols - w) // 2
        right = self.cols - w - left
        blank = [Segment(" " * self.cols, Style(bgcolor=self.background))] if self.cols else []
        out: list[list[Segment]] = [list(blank) for _ in range(top_pad)]
        pad_l = Segment(" " * left, Style(bgcolor=self.background)) if left else None
        pad_r = Segment(" " * right, Style(bgcolor=self.background)) if right else None
        cache: dict[tuple[int, ...], Style] = {}
        for r in range(img_rows):
            upper, lower = px[2 * r], px[2 * r + 1]
            row = [pad_l] if pad_l else []
            for x in range(w):
                key = (*upper[x].tolist(), *lower[x].tolist())
                style = cache.get(key)
                if style is None:
                    style = cache[key] = Style(color=Color.from_rgb(*key[:3]), bgcolor=Color.from_rgb(*key[3:]))
                row.append(Segment(UPPER_HALF, style))
            if pad_r:
                row.append(pad_r)
            out.append(row)
        while len(out) < self.rows:
            out.append(list(blank))
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for i, row in enumerate(self.lines()):
            yield from row
            if i < self.rows - 1:
                yield Segment.line()
