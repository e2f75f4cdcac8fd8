"""engine/video.py: PyAV decode and encode, frame rate and audio passthrough (no TensorFlow, no ffmpeg binary)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from helpers import make_video

from gradfx.engine.errors import ImageError, OutputError
from gradfx.engine.images import video

av = pytest.importorskip("av")


def test_probe_and_read_frames(tmp_path):
    made = make_video(tmp_path / "in.mp4")
    info = video.probe(tmp_path / "in.mp4")
    assert (info.frames, info.fps, info.width, info.height, info.has_audio) == (12, Fraction(12), 64, 64, True)
    frames = list(video.read_frames(tmp_path / "in.mp4"))
    assert len(frames) == 12
    assert all(f.dtype == np.float32 and f.shape == (64, 64, 3) for f in frames)
    assert 0.0 <= min(f.min() for f in frames) and max(f.max() for f in frames) <= 1.0
    # display order, close to what was encoded (yuv420p loses a little colour)
    for f, m in zip(frames, made):
        assert np.abs(f * 255 - m).mean() < 8


def test_write_keeps_count_rate_and_audio(tmp_path):
    make_video(tmp_path / "in.mp4", fps=Fraction(25))
    frames = [1.0 - f for f in video.read_frames(tmp_path / "in.mp4")]
    out = video.write_video(tmp_path / "out.mp4", frames, Fraction(25), audio_from=tmp_path / "in.mp4")
    info = video.probe(out)
    assert (info.frames, info.fps, info.width, info.height, info.has_audio) == (12, Fraction(25), 64, 64, True)
    back = list(video.read_frames(out))
    assert np.abs(back[5] - frames[5]).mean() < 0.03  # the frames written, not the source's
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, no temporary left


@pytest.mark.parametrize("ext", [".webm", ".avi", ".mkv"])
def test_write_other_containers_without_audio(tmp_path, ext):
    make_video(tmp_path / "in.mp4", frames=4, audio=False)
    frames = list(video.read_frames(tmp_path / "in.mp4"))
    info = video.probe(video.write_video(tmp_path / f"out{ext}", frames, Fraction(30000, 1001)))
    assert (info.frames, info.fps, info.has_audio) == (4, Fraction(30000, 1001), False)


def test_frames_of_other_sizes_follow_the_first_and_sides_become_even(tmp_path):
    frames = [np.zeros((33, 47, 3), np.float32), np.ones((64, 64, 3), np.float32)]
    info = video.probe(video.write_video(tmp_path / "o.mp4", frames, 10))
    assert (info.width, info.height, info.frames) == (46, 32, 2)


def test_errors_are_one_line_and_name_the_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x01not a video" * 50)
    with pytest.raises(ImageError, match="bad.mp4"):
        video.probe(bad)
    with pytest.raises(ImageError, match="does not exist"):
        list(video.read_frames(tmp_path / "missing.mp4"))
    with pytest.raises(OutputError, match="unknown video extension"):
        video.write_video(tmp_path / "x.gif", [np.zeros((8, 8, 3))], 10)
    with pytest.raises(OutputError, match="no frames"):
        video.write_video(tmp_path / "x.mp4", [], 10)
    assert not (tmp_path / "x.mp4").exists()
    assert video.is_video("a/B.MP4") and not video.is_video("a.png")
