"""One progress-event type that the CLI, the TUI and API callers all consume, and cooperative cancellation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ProgressEvent:
    """A report from the optimisation loop, sent after every step.

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
