"""Colour helpers shared by the style effects: luminance (YIQ's Y), transferring only it while keeping the
content's chroma (``preserve_colors=luminance``), and matching one image's colour histogram to another's
(``preserve_colors=histogram``, Gatys et al. 2016's colour preservation). NumPy only."""

from __future__ import annotations

import numpy as np

# RGB <-> YIQ (NTSC). Y is the luminance; I and Q carry the chroma that `preserve_colors=luminance` keeps.
# RGB <-> YIQ (NTSC). Y is the luminance; I and Q carry the chroma that `preserve_colors=luminance` keeps.
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], np.float64
)

_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)

def rgb_to_yiq(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, np.float64) @ _RGB_TO_YIQ.T

def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    return np.asarray(yiq, np.float64) @ _YIQ_TO_RGB.T

def luminance(rgb: np.ndarray) -> np.ndarray:
    """The Y channel (H x W) of an RGB image."""
    return rgb_to_yiq(rgb)[..., 0]

def match_luminance(style_y: np.ndarray, content_y: np.ndarray) -> np.ndarray:
    """Shift and scale a style's luminance to the content's mean and standard deviation (Gatys et al. 2016,
    "Preserving Color in Neural Artistic Style Transfer", luminance-only transfer)."""
    s_mean, s_std = float(style_y.mean()), float(style_y.std())
    c_mean, c_std = float(content_y.mean()), float(content_y.std())
    return (style_y - s_mean) * (c_std / max(s_std, 1e-6)) + c_mean

def match_color_histogram(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Recolour ``style`` so its RGB mean and covariance equal ``content``'s (the colour-histogram matching
    of Gatys et al. 2016, with the symmetric "Image Analogies" transform ``A = Cc^1/2 Cs^-1/2``)."""

    def stats(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        px = np.asarray(img, np.float64).reshape(-1, 3)
        return px.mean(0), np.cov(px, rowvar=False) + 1e-5 * np.eye(3)

    def sqrtm(c: np.ndarray, power: float) -> np.ndarray:
        vals, vecs = np.linalg.eigh(c)
        return (vecs * np.maximum(vals, 1e-8) ** power) @ vecs.T

    mu_s, cov_s = stats(style)
    mu_c, cov_c = stats(content)
    a = sqrtm(cov_c, 0.5) @ sqrtm(cov_s, -0.5)
    out = (np.asarray(style, np.float64).reshape(-1, 3) - mu_s) @ a.T + mu_c
    return np.clip(out.reshape(style.shape), 0.0, 1.0).astype(np.float32)

def grey3(y: np.ndarray) -> np.ndarray:
    """A luminance plane as a 3-channel image in [0, 1]."""
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)

def restore_chroma(image: np.ndarray, content: np.ndarray) -> np.ndarray:
    """``image``'s luminance with ``content``'s chroma (YIQ I and Q), clipped to [0, 1]."""
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = luminance(image)
    return np.clip(yiq_to_rgb(yiq), 0.0, 1.0).astype(np.float32)


__all__ = ["grey3", "luminance", "match_color_histogram", "match_luminance", "restore_chroma", "rgb_to_yiq",
           "yiq_to_rgb"]
