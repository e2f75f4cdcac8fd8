"""Real photographs for tests that need learned features to see something: scikit-image's bundled images
(a test dependency; they ship inside its wheel, so no download). Importing this module does not import TF."""

from __future__ import annotations

import numpy as np

#: skimage.data functions whose images are in the wheel: a portrait, a cat, a cup of coffee
PHOTOS = ("astronaut", "chelsea", "coffee")


def photo(name: str, size: int) -> np.ndarray:
    """``skimage.data.<name>()`` as float32 RGB in [0, 1], resized so its longest side is ``size`` px."""
    from PIL import Image
    from skimage import data

    rgb = getattr(data, name)()
    im = Image.fromarray(rgb)
    scale = size / max(im.size)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
    return np.asarray(im, np.float32) / 255.0
