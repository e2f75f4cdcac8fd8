"""Labelled sheets: images in rows with their labels wrapped under them and a title above (feature-vis contact
sheets, the demo's overview). NumPy and Pillow only."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import numpy as np
from PIL import Image

from .arrays import to_uint8

__all__ = ["balanced_columns", "label_font", "labelled_sheet", "wrap_label"]

#: a label's pieces: runs that end just after a character a label may break after (kept on its line)
_LABEL_PIECES = re.compile(r"[^ _:,/-]*[ _:,/-]|[^ _:,/-]+")


def balanced_columns(n: int) -> int:
    """Columns for ``n`` tiles with no row left short where ``n`` allows: the smallest divisor of ``n`` from
    sqrt(n) up to twice that (8 -> 4: two full rows, where 3 left a 3x3 grid with an empty slot), else
    ceil(sqrt(n)) (7 -> 3)."""
    side = math.ceil(math.sqrt(max(n, 1)))
    return next((c for c in range(side, 2 * side + 1) if n % c == 0 and c * c >= n), side)


def label_font(size: int):
    """Pillow's built-in font at ``size`` px (the fixed bitmap font on Pillow < 10.1)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def wrap_label(text: str, width: int, font) -> list[str]:
    """``text`` as lines no wider than ``width`` px in ``font``, never cut short: ``"".join(lines) == text``.

    Breaks after a space, ``_``, ``:``, ``,``, ``/`` or ``-`` where it can, inside a word where it must (one
    character a line at the least). A trailing space does not count towards a line's width.
    """

    def fits(line: str) -> bool:
        return font.getlength(line.rstrip()) <= width

    lines: list[str] = []
    line = ""
    for piece in _LABEL_PIECES.findall(text):
        if fits(line + piece):
            line += piece
            continue
        if line:
            lines.append(line)
            line = ""
        for ch in piece:  # a piece too wide alone is broken between characters
            if line and not fits(line + ch):
                lines.append(line)
                line = ""
            line += ch
    return [*lines, line] if line or not lines else lines


def labelled_sheet(tiles: Iterable[tuple[str, np.ndarray]], *, columns: int, gap: int = 2, font_size: int = 10,
                   title: Iterable[str | tuple[str, object]] = (), title_size: int = 15,
                   min_width: int = 0) -> np.ndarray:
    """Images in rows of ``columns``, each with its label below it wrapped to the image's width (so no label
    runs into its neighbour or is cut short), under optional ``title`` lines (text, or (text, colour)) wrapped
    to the sheet's width; black on white. ``tiles`` are (label, H x W x 3 floats in [0, 1]). Returns the sheet
    as H x W x 3 floats in [0, 1]."""
    from PIL import ImageDraw

    small, big = label_font(font_size), label_font(title_size)
    step_small, step_big = small.getbbox("Ag")[3] + 3, big.getbbox("Ag")[3] + 3  # line heights
    pics = [(label, Image.fromarray(to_uint8(rgb))) for label, rgb in tiles]
    rows = []  # per row: [(label lines, image)], the row's height with its label strip
    for i in range(0, len(pics), columns):
        cells = [(wrap_label(label, im.width, small), im) for label, im in pics[i:i + columns]]
        strip = max(len(lines) for lines, _ in cells) * step_small + 2
        rows.append((cells, max(im.height for _, im in cells) + strip))
    width = max([min_width] + [sum(im.width for _, im in cells) + gap * (len(cells) + 1) for cells, _ in rows])
    heads = [(line, colour) for item in title
             for text, colour in [item if isinstance(item, tuple) else (item, "black")]
             for line in wrap_label(text, width - 2 * gap, big)]
    top = gap + len(heads) * step_big + (gap if heads else 0)
    sheet = Image.new("RGB", (width, top + sum(h + gap for _, h in rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (line, colour) in enumerate(heads):
        draw.text((gap, gap + i * step_big), line.rstrip(), fill=colour, font=big)
    y = top
    for cells, row_height in rows:
        x = gap
        for lines, im in cells:
            sheet.paste(im, (x, y))
            for k, line in enumerate(lines):
                draw.text((x, y + im.height + 1 + k * step_small), line.rstrip(), fill="black", font=small)
            x += im.width + gap
        y += row_height + gap
    return np.asarray(sheet, np.float32) / 255.0
