"""The preview panel: the current image."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widget import Widget

from ..preview import HalfBlocks


class Preview(Widget):
    """The current image: half-cell blocks everywhere, or a textual-image widget where the terminal draws
    real pixels (Kitty graphics, Sixel)."""

    image: reactive[np.ndarray | None] = reactive(None, always_update=True, layout=False)

    def __init__(self, graphics: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.graphics = graphics
        self._cache: tuple[int, int, int, HalfBlocks] | None = None
        self._pixels: Any = None

    def compose(self) -> ComposeResult:
        if self.graphics:
            from textual_image.widget import Image as PixelImage

            self._pixels = PixelImage(id="pixels")
            yield self._pixels

    def watch_image(self, image: np.ndarray | None) -> None:
        self._cache = None
        if self._pixels is not None:
            from PIL import Image

            self._pixels.image = None if image is None else Image.fromarray(image)
        self.refresh()

    def render(self) -> Any:
        if self.graphics:
            return ""
        image = self.image
        if image is None:
            return Text("no image yet: ctrl+o opens one", style="dim", justify="center")
        w, h = self.content_size.width, self.content_size.height
        key = (id(image), w, h)
        if self._cache is None or self._cache[:3] != key:
            self._cache = (*key, HalfBlocks(image, w, h))
        return self._cache[3]
