"""One progress-event type that the CLI, the TUI and API callers all consume, and cooperative cancellation."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np


@dataclass
class ProgressEvent:
    """A report from the optimisation loop, sent after every step.

    ``stage`` is the stage's name as the CLI shows it (``step 2/3 deepdream · octave 1/3 (448x336)``);
    ``stage_index`` (from 0) of ``stage_count``, ``step`` of ``steps`` are the position within the stage;
    ``total_step`` of ``total_steps`` within the effect's run (a chain's step counts its own). ``effect`` is
    the effect this event comes from, and ``chain_index`` (from 0) of ``chain_count`` its place in a chain
    (a single run: 0 of 1), so a consumer need not parse ``stage``.

    ``preview()`` turns the current image into a NumPy array (H x W x 3 in [0, 1], or a batch); it costs a
    device-to-host copy, so a consumer that shows previews should call it at its own rate, not every step.
    """

    stage: str
    stage_index: int
    stage_count: int
    step: int
    steps: int
    loss: float
    elapsed: float
    total_step: int = 0
    total_steps: int = 0
    message: str = ""
    effect: str = ""
    chain_index: int = 0
    chain_count: int = 1
    #: ``elapsed`` and ``total_step`` of the solve's first event: its first step also builds and traces the
    #: model (seconds, where a step takes milliseconds), so :attr:`eta` counts the steps after it
    warmup_elapsed: float = 0.0
    warmup_step: int = 0
    _preview: Callable[[], np.ndarray] | None = field(default=None, repr=False)

    @property
    def eta(self) -> float | None:
        """Seconds left, from the mean time of the steps since the solve's first (which traces the model: 3.7
        s spread over 299 steps left predicted 1105 s for a 4 s run); None until a step after it."""
        done = self.total_step - self.warmup_step
        if done <= 0 or self.total_steps <= 0:
            return None
        return (self.elapsed - self.warmup_elapsed) / done * max(self.total_steps - self.total_step, 0)

    @property
    def fraction(self) -> float:
        return self.total_step / self.total_steps if self.total_steps else 0.0

    def preview(self) -> np.ndarray | None:
        return None if self._preview is None else self._preview()

    @property
    def chain_step(self) -> tuple[int, int] | None:
        """Which step of a chain this event comes from, and of how many: a chain names it at the start of the
        stage (``step 2/3 deepdream · octave 1/3 ...``) and counts ``total_step`` within that step. None
        outside a chain."""
        match = _CHAIN_STEP.match(self.stage)
        return None if match is None else (int(match[1]), int(match[2]))

    @property
    def run_fraction(self) -> float:
        """How far the whole run is, a chain's steps counted equal: step 2 of 2 starts at 50%."""
        step = self.chain_step
        if step is None:
            return self.fraction
        index, count = step
        return (index - 1 + self.fraction) / max(count, 1)

    def to_dict(self) -> dict[str, Any]:
        """The event's fields (not its preview) as JSON holds them: what a background job writes for the
        processes that follow it (:meth:`from_dict` reads it back)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProgressEvent:
        """The event :meth:`to_dict` wrote (unknown keys, from a newer gradfx, are left aside)."""
        names = {f.name for f in fields(cls) if not f.name.startswith("_")}
        return cls(**{k: v for k, v in data.items() if k in names})


_CHAIN_STEP = re.compile(r"step (\d+)/(\d+) ")


ProgressCallback = Callable[[ProgressEvent], None]


class CancelToken:
    """Set from any thread (a TUI button, a signal handler); the loop stops after the current step and
    returns its best image so far."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()
