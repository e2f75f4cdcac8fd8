"""The frames before the current one, for effects run over a sequence of frames (``temporal=flow``):
:class:`Previous`, what an effect sees as ``ctx.previous``, and :class:`FrameHistory`, the one place a
caller running frames in order (:func:`gradfx.engine.run_frames`, a batch's sequence) keeps them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass
class Previous:
    """The frame before the current one: its ``input`` (H x W x 3 in [0, 1], as given to the run) and the
    effect's ``output`` for it; ``earlier``: the frames before it, most recent first, for long-term
    consistency (``temporal_frames`` > 1)."""

    input: np.ndarray
    output: np.ndarray
    earlier: tuple[Previous, ...] = ()

    def frames(self) -> list[Previous]:
        """This frame and the earlier ones, most recent first."""
        return [Previous(self.input, self.output), *self.earlier]

    @classmethod
    def chain(cls, frames: Sequence[Previous]) -> Previous:
        """The previous frame ``frames[0]`` with ``frames[1:]`` as its earlier frames."""
        return cls(frames[0].input, frames[0].output, tuple(Previous(f.input, f.output) for f in frames[1:]))


class FrameHistory(Generic[T]):
    """The frames before the next one, most recent first, at most ``keep`` (an effect's ``temporal_frames``):
    each an (input, output) pair of arrays, or of anything that loads into one (a batch keeps a frame's
    decoded pixels or path and its output file, so a rerun continues from the outputs on disk)."""

    def __init__(self, keep: int = 1) -> None:
        self.keep = max(1, int(keep))
        self.frames: list[tuple[T, T]] = []

    def add(self, input: T, output: T) -> None:
        """A frame done: the next one follows it."""
        self.frames = [(input, output), *self.frames][: self.keep]

    def clear(self) -> None:
        """A frame failed: the next one starts afresh."""
        self.frames = []

    def previous(self, load_input: Callable[[T], Any] = lambda x: x,
                 load_output: Callable[[T], Any] = lambda x: x) -> Previous | None:
        """What the next frame's run follows (``run(..., previous=)``), or None for the first."""
        if not self.frames:
            return None
        return Previous.chain([Previous(load_input(i), load_output(o)) for i, o in self.frames])
