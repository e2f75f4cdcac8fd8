"""A batch's items: the image files, folders, globs and video frames it runs on, each with its key, output
path and seed (:func:`discover`), and their pixels in order (:func:`payloads`)."""

from __future__ import annotations

import glob as globlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ImageError, OutputError
from ..images import video

#: extensions of the files a folder or glob contributes as images
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jfif", ".webp", ".tif", ".tiff", ".gif", ".bmp", ".ppm", ".pgm",
                  ".pbm", ".tga", ".qoi", ".avif", ".heic", ".heif", ".mpo")

def item_seed(seed: int, key: str) -> int:
    """The seed of item ``key`` in a batch with ``seed``: sha256 of ``"{seed}:{key}"``, first 4 bytes."""
    return int.from_bytes(hashlib.sha256(f"{int(seed)}:{key}".encode()).digest()[:4], "big")

@dataclass(frozen=True)
class Item:
    """One unit of work: an image file, or one frame of a video (``frame`` >= 1)."""

    key: str  #: relative path (the seed and the output follow from it)
    source: str  #: the input file (the video, for a frame)
    output: str  #: where its image goes
    seed: int
    frame: int | None = None

@dataclass(frozen=True)
class VideoJob:
    """A video input: its frames are items; once all are done they are encoded into ``output``."""

    key: str
    source: str
    output: str
    fps: Any
    has_audio: bool
    frames: tuple[Item, ...]

def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES

def _files_under(folder: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
    return out

def _glob_base(pattern: str) -> Path:
    fixed = []
    for p in Path(pattern).parts:
        if globlib.has_magic(p):
            break
        fixed.append(p)
    return Path(*fixed) if fixed else Path(".")

def _sources(inputs: Sequence[str | os.PathLike]) -> list[tuple[Path, str]]:
    """(file, key) for every input file, in a stable order; errors for inputs that give nothing."""
    found: list[tuple[Path, str]] = []
    for raw in inputs:
        text = os.fspath(raw)
        path = Path(text)
        if path.is_dir():
            files = [f for f in _files_under(path) if _is_image(f) or video.is_video(f)]
            if not files:
                raise ImageError(f"folder {text!r} holds no images or videos; check the path")
            found += [(f, f.relative_to(path).as_posix()) for f in files]
        elif path.is_file():
            found.append((path, path.name))
        elif globlib.has_magic(text):
            base = _glob_base(text)
            files = sorted(Path(f) for f in globlib.glob(text, recursive=True) if Path(f).is_file())
            files = [f for f in files if _is_image(f) or video.is_video(f)]
            if not files:
                raise ImageError(f"{text!r} matches no images or videos; check the pattern")
            found += [(f, f.relative_to(base).as_posix()) for f in files]
        else:
            raise ImageError(f"input {text!r} does not exist; give image files, folders, globs or videos")
    return found

def discover(inputs: Sequence[str | os.PathLike], outdir: str | os.PathLike, *, seed: int = 0
             ) -> tuple[list[Item], list[VideoJob]]:
    """Every item of ``inputs`` with its key, output path and seed, and the videos to encode; a file named
    twice counts once; two files whose outputs would collide (``a.jpg`` and ``a.png``) are an error."""
    out = Path(outdir).absolute()  # absolute: Ray workers run in other folders
    items: list[Item] = []
    videos: list[VideoJob] = []
    owners: dict[str, str] = {}

    def claim(target: Path, source: Path) -> str:
        key = os.path.normcase(str(target))
        if key in owners and owners[key] != str(source):
            raise OutputError(f"{source} and {owners[key]} would both write {target}; rename one, or run them "
                              "in separate batches")
        owners[key] = str(source)
        return str(target)

    seen: set[tuple[str, str]] = set()
    for file, key in _sources(inputs):
        file = file.absolute()
        if (os.path.realpath(file), key) in seen:  # the same file named twice (a folder and a file in it)
            continue
        seen.add((os.path.realpath(file), key))
        stem = key[: -len(file.suffix)] if file.suffix else key
        if video.is_video(file):
            info = video.probe(file)
            frames = tuple(
                Item(f"{key}#{i:06d}", str(file), claim(out / stem / f"{i:06d}.png", file),
                     item_seed(seed, f"{key}#{i:06d}"), frame=i)
                for i in range(1, info.frames + 1))
            items += frames
            videos.append(VideoJob(key, str(file), claim(out / key, file), info.fps, info.has_audio, frames))
        else:
            items.append(Item(key, str(file), claim(out / f"{stem}.png", file), item_seed(seed, key)))
    if not items:
        raise ImageError("no items: the inputs hold no images or video frames")
    return items, videos

def payloads(items: Sequence[Item]) -> Iterator[tuple[Item, Any]]:
    """(item, what to load): the path of an image, the decoded frame of a video (each video decoded once,
    in order), or the exception that made a frame unreadable."""
    reader: Iterator[Any] | None = None
    current: str | None = None
    position = 0
    for item in items:
        if item.frame is None:
            yield item, item.source
            continue
        if item.source != current or item.frame <= position:
            current, position, reader = item.source, 0, video.read_frames(item.source)
        frame: Any = None
        try:
            assert reader is not None
            while position < item.frame:
                frame = next(reader)
                position += 1
        except StopIteration:
            frame = ImageError(f"video {item.source!r} has no frame {item.frame} (it ended at {position})")
            reader = iter(())
        except ImageError as exc:
            frame = exc
            reader = iter(())
            position = item.frame
        yield item, frame
