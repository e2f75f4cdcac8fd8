"""Video files in and out, through PyAV (FFmpeg's libraries in a wheel: no ``ffmpeg`` binary needed).

::

    from gradfx.engine import video
    info = video.probe("clip.mp4")              # frames, fps (a Fraction), size, audio or not
    for frame in video.read_frames("clip.mp4"): # float32 H x W x 3 in [0, 1], in display order
        ...
    video.write_video("out.mp4", frames, info.fps, audio_from="clip.mp4")

``write_video`` encodes in the container its extension names (H.264 for .mp4/.mov/.mkv, VP9 for .webm,
MPEG-4 part 2 for .avi), at exactly the frame rate given, one output frame per frame passed, and copies the
audio streams of ``audio_from`` unchanged (no re-encoding) when there are any. It writes atomically, like
every gradfx output. PyAV is imported on first use; without it the error names the extra to install.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GradfxError, ImageError, OutputError, one_line
from . import atomic
from .arrays import to_uint8

#: file extensions read as videos, and the FFmpeg container each is written as
VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
                 ".avi": "avi"}
_CODECS = {"mp4": "libx264", "mov": "libx264", "matroska": "libx264", "webm": "libvpx-vp9", "avi": "mpeg4"}
_INSTALL = "install it with: pip install 'gradfx[video]'"


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` reads from a video's header."""

    path: str
    frames: int  #: frames in the video stream (counted by decoding when the header does not say)
    fps: Fraction  #: the stream's average frame rate
    width: int
    height: int
    has_audio: bool


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path``'s extension is one of :data:`VIDEO_FORMATS`."""
    return Path(path).suffix.lower() in VIDEO_FORMATS


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise GradfxError(f"reading and writing videos needs PyAV; {_INSTALL}") from None
    return av


def _open(path: str | os.PathLike) -> Any:
    av = _av()
    shown = os.fspath(path)
    if not os.path.isfile(shown):
        raise ImageError(f"video {shown!r} does not exist; check the path")
    try:
        container = av.open(shown)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ImageError(f"video {shown!r} cannot be read ({one_line(exc)}); is it a video file?") from None
    if not container.streams.video:
        container.close()
        raise ImageError(f"{shown!r} has no video stream; give a video file")
    return container


def probe(path: str | os.PathLike) -> VideoInfo:
    """Frame count, frame rate, size and whether there is audio; an :class:`ImageError` for a file that is
    missing, not a video, or corrupt."""
    av = _av()
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise ImageError(f"video {os.fspath(path)!r} has no frame rate; re-encode it with a constant one")
        frames = int(stream.frames or 0)
        if frames <= 0:  # some containers (webm, mkv) do not store the count: decode to count
            try:
                frames = sum(1 for _ in container.decode(stream))
            except av.error.FFmpegError as exc:
                raise ImageError(f"video {os.fspath(path)!r} is corrupt ({one_line(exc)})") from None
        return VideoInfo(os.fspath(path), frames, Fraction(rate), int(stream.codec_context.width),
                         int(stream.codec_context.height), bool(container.streams.audio))
    finally:
        container.close()


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """The video's frames in display order, each float32 H x W x 3 in [0, 1] (decoded as 8-bit RGB); an
    :class:`ImageError` naming the frame for a file that fails part way."""
    av = _av()
    container = _open(path)
    index = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                index += 1
                yield frame.to_ndarray(format="rgb24").astype(np.float32) / 255.0
        except av.error.FFmpegError as exc:
            raise ImageError(f"video {os.fspath(path)!r}: frame {index + 1} cannot be decoded "
                             f"({one_line(exc)})") from None
    finally:
        container.close()


def encoded_shape(h: int, w: int) -> tuple[int, int]:
    """(height, width) of the video :func:`write_video` makes of ``h`` x ``w`` frames: cropped to even sides,
    which the 4:2:0 colour of H.264, VP9 and MPEG-4 needs (a 75 px side becomes 74)."""
    return h - h % 2, w - w % 2


def _even(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``frame`` as uint8 at ``size`` (h, w): resized if it differs, then cropped to even sides (4:2:0)."""
    if size is not None and frame.shape[:2] != size:
        from PIL import Image

        frame = np.asarray(Image.fromarray(to_uint8(frame)).resize((size[1], size[0]), Image.LANCZOS))
    h, w = encoded_shape(*frame.shape[:2])
    frame = frame[:h, :w]
    return frame if frame.dtype == np.uint8 else to_uint8(frame)


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: Fraction | float | int, *,
                audio_from: str | os.PathLike | None = None, overwrite: bool = True,
                quality: int = 18) -> Path:
    """Encode ``frames`` (H x W x 3 floats in [0, 1] or uint8; all resized to the first one's size, cropped to
    even sides) at ``fps`` into ``path``, atomically, copying ``audio_from``'s audio streams when it has any.

    ``quality`` is the H.264/VP9 constant-quality level (lower is better; 18 is visually lossless).
    """
    av = _av()
    target = Path(path)
    fmt = VIDEO_FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise OutputError(f"{target}: unknown video extension {target.suffix or '(none)'!r}; use one of "
                          f"{', '.join(VIDEO_FORMATS)}")
    rate = Fraction(fps).limit_denominator(1_000_000)
    if rate <= 0:
        raise OutputError(f"{target}: frame rate must be positive, not {fps!r}")

    def write(tmp: Path) -> None:
        source = _open(audio_from) if audio_from is not None else None
        out = av.open(str(tmp), mode="w", format=fmt)
        try:
            stream = None
            size = None
            for frame in frames:
                if stream is None:
                    first = _even(np.asarray(frame), None)
                    size = first.shape[:2]
                    stream = out.add_stream(_CODECS[fmt], rate=rate)
                    stream.height, stream.width = size
                    stream.pix_fmt = "yuv420p"
                    stream.time_base = 1 / rate
                    if _CODECS[fmt] in ("libx264", "libvpx-vp9"):
                        stream.options = {"crf": str(quality), **({"b": "0"} if fmt == "webm" else {})}
                    audio = _audio_streams(out, source)
                    pixels = first
                else:
                    pixels = _even(np.asarray(frame), size)
                for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                    out.mux(packet)
            if stream is None:
                raise OutputError(f"{target}: no frames to write")
            for packet in stream.encode():
                out.mux(packet)
            if audio:
                streams = dict(audio)
                for packet in source.demux(*streams):
                    if packet.dts is None:  # the demuxer's flush packet
                        continue
                    packet.stream = streams[packet.stream]
                    out.mux(packet)
        finally:
            out.close()
            if source is not None:
                source.close()

    return atomic.atomic_write(target, write, overwrite=overwrite)


def _audio_streams(out: Any, source: Any) -> list[tuple[Any, Any]]:
    """Output streams copying ``source``'s audio streams (codec and parameters unchanged)."""
    if source is None:
        return []
    return [(s, out.add_stream_from_template(s)) for s in source.streams.audio]


__all__ = ["VideoInfo", "VIDEO_FORMATS", "encoded_shape", "is_video", "probe", "read_frames", "write_video"]
