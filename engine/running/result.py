"""What a run returns and how its files are written: :class:`Result` (the image, its alpha, extras and the run
report), the JSON report and numbered frames, all written atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError
from ..images import atomic
from ..images.arrays import to_uint8
from ..images.save import check_output_path, save_image


@dataclass
class Result:
    """An effect's output image (H x W x 3 floats in [0, 1]), its alpha if the input had one, extra outputs
    (contact sheets, frames) and the run report (a JSON-able dict)."""

    image: np.ndarray
    report: dict[str, Any]
    alpha: np.ndarray | None = None
    extras: dict[str, np.ndarray | list[np.ndarray]] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        return bool(self.report.get("partial"))

    def to_uint8(self, *, alpha: bool = False) -> np.ndarray:
        """The image as 8-bit pixels, H x W x 3 uint8: exactly what :meth:`save` writes to a PNG.
        ``alpha=True``: H x W x 4, with the input's transparency (255, opaque, where it had none)."""
        rgb = to_uint8(self.image)
        if not alpha:
            return rgb
        a = np.full(rgb.shape[:2], 255, np.uint8) if self.alpha is None else to_uint8(self.alpha)
        return np.dstack([rgb, a])

    def to_pil(self) -> Any:
        """The image as a ``PIL.Image.Image``: RGBA when the input had transparency, else RGB; the pixels
        :meth:`save` writes to a PNG."""
        from PIL import Image

        return Image.fromarray(self.to_uint8(alpha=self.alpha is not None))

    def save(self, path: str | os.PathLike, *, overwrite: bool = False, protect: Sequence[str] = (),
             report: str | os.PathLike | None = None) -> list[Path]:
        """Write the image (atomically), its extras beside it (``<stem>-<suffix>.png``, or numbered frames in
        ``<stem>-<suffix>/`` and ``<stem>-<suffix>.webp``), and the report if a path is given; returns the files
        written.

        An existing file is never replaced unless ``overwrite=True`` (as ``gradfx run`` needs ``--overwrite``):
        every file it would write is checked first, so a refusal (an ``OutputError``) writes nothing. The
        report file is replaced. ``protect`` lists paths never to write (the inputs), whatever ``overwrite``
        says.
        """
        path = Path(path)
        # an extra image goes to <stem>-<suffix>.png, a list of frames into the folder <stem>-<suffix>/
        extras = [(extra, path.with_name(f"{path.stem}-{suffix}{'' if isinstance(extra, list) else '.png'}"))
                  for suffix, extra in self.extras.items()]
        if not overwrite:  # every file it would write, before the first is written
            targets = [path]
            for extra, target in extras:
                if isinstance(extra, list):  # numbered frames, and their animation beside the folder
                    targets += [target / f"{i:04d}.png" for i in range(1, len(extra) + 1)]
                    targets.append(target.with_suffix(".webp"))
                else:
                    targets.append(target)
            for target in targets:
                if os.path.lexists(target):
                    raise OutputError(f"{target}: exists; pass overwrite=True to replace it, or choose another "
                                      "name")
        written = [save_image(path, self.image, alpha=self.alpha, overwrite=overwrite, protect=protect)]
        for extra, target in extras:
            if isinstance(extra, list):
                written += write_frames(target, extra, protect=protect, overwrite=overwrite)
            else:
                written.append(save_image(target, extra, protect=protect, overwrite=overwrite))
        self.report["outputs"] = [str(p) for p in written]
        if report is not None:
            written.append(write_report(report, self.report, protect=[*protect, *written]))
        return written


def write_report(path: str | os.PathLike, report: Mapping[str, Any], *,
                 protect: Sequence[str | os.PathLike] = ()) -> Path:
    """Write a run report as JSON, atomically; never over one of the ``protect`` paths (inputs, outputs)."""
    target = check_output_path(path, protect=protect, image=False)
    text = report_json(report)
    return atomic.atomic_write(target, lambda tmp: Path(tmp).write_text(text))


def report_json(report: Mapping[str, Any]) -> str:
    """A run report as the JSON text :func:`write_report` writes (NumPy values as numbers and lists)."""
    return json.dumps(report, indent=2, default=_json_default) + "\n"


def write_frames(folder: Path, frames: Sequence[np.ndarray], *, protect: Sequence[str] = (),
                 duration_ms: int = 100, overwrite: bool = True) -> list[Path]:
    """Numbered PNG frames in ``folder`` plus an animated WebP ``folder.webp`` beside it; ``overwrite=False``
    never replaces an existing one."""
    from PIL import Image

    atomic.output_folder(folder, "frames folder")
    written = [save_image(folder / f"{i:04d}.png", f, protect=protect, overwrite=overwrite)
               for i, f in enumerate(frames, 1)]
    pil = [Image.fromarray(to_uint8(f)) for f in frames]
    anim = folder.with_suffix(".webp")

    def write(tmp: Any) -> None:
        pil[0].save(tmp, format="WEBP", save_all=True, append_images=pil[1:], duration=duration_ms, loop=0,
                    lossless=False, quality=90)

    written.append(atomic.atomic_write(anim, write, overwrite=overwrite))
    return written


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return repr(value)


__all__ = ["Result", "report_json", "write_frames", "write_report"]
