"""A job's live progress on disk: the worker writes the latest :class:`~gradfx.engine.progress.ProgressEvent`
(a batch's :class:`~gradfx.engine.batch.BatchEvent`, with the step event of its item in flight) to
``progress.json`` and the image being optimised to ``preview.png``, atomically and at a bounded rate;
``gradfx jobs``, ``gradfx jobs follow`` and the TUI read them back as the same event types.

Writing never stops the run: a full disk or a deleted state folder is said once in the job's log, and
writing is tried again a while later.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GradfxError
from ..images.arrays import resize_longest, to_uint8
from ..images.load import load_image
from ..progress import ProgressEvent
from .store import PREVIEW, PROGRESS, Job

#: seconds between progress writes (a stage's last step is always written)
INTERVAL = 0.25
#: seconds between preview writes (each copies the image off the device)
PREVIEW_INTERVAL = 2.0
#: the preview's longest side
PREVIEW_SIZE = 320
#: seconds before writing is tried again after it failed
RETRY = 30.0
#: losses kept for the loss curve
LOSSES = 200


@dataclass
class Progress:
    """What ``progress.json`` holds: the latest step event, a batch's counts (``batch``: the
    :class:`~gradfx.engine.batch.BatchEvent`'s fields), when it was written (``time.time()``) and the losses
    of the running chain step (or run) so far, the last :data:`LOSSES` of them."""

    event: ProgressEvent | None
    batch: dict[str, Any] | None
    written: float
    losses: list[float] = field(default_factory=list)

    @property
    def eta(self) -> float | None:
        """Seconds left now: the event's ETA less the time since it was written."""
        eta = self.batch_event().eta if self.batch is not None else (self.event.eta if self.event else None)
        return None if eta is None else max(eta - max(time.time() - self.written, 0.0), 0.0)

    @property
    def fraction(self) -> float:
        """How far the run is, from 0 to 1 (a batch: its items; a chain: its steps counted equal)."""
        if self.batch is not None:
            total = self.batch.get("total") or 0
            finished = sum(self.batch.get(k, 0) for k in ("done", "failed", "skipped"))
            return finished / total if total else 0.0
        return self.event.run_fraction if self.event else 0.0

    def batch_event(self) -> Any:
        """A batch's progress as the :class:`~gradfx.engine.batch.BatchEvent` the batch sent."""
        from ..batch.runner import BatchEvent

        assert self.batch is not None
        return BatchEvent(**{**self.batch, "step": self.event})


def read(job: Job) -> Progress | None:
    """The job's latest progress, or None before its first step."""
    data = job.read_json(PROGRESS)
    if not isinstance(data, dict):
        return None
    event = ProgressEvent.from_dict(data["event"]) if isinstance(data.get("event"), dict) else None
    batch = data.get("batch") if isinstance(data.get("batch"), dict) else None
    losses = [float(x) for x in data.get("losses") or [] if isinstance(x, (int, float))]
    return Progress(event, batch, float(data.get("written") or 0.0), losses)


def shown_fraction(status: str | None, progress: Progress | None) -> float | None:
    """How far a job is, as ``gradfx jobs`` and the TUI's panel show it: all of it once done (the last progress
    written may be steps before the end, or the run stopped early at its ``max_loss``), else how far it came;
    None before any progress."""
    if status == "done":
        return 1.0
    return None if progress is None else progress.fraction


def read_preview(job: Job) -> np.ndarray | None:
    """The latest preview (uint8 RGB), or None."""
    path = job.folder / PREVIEW
    if not path.is_file():
        return None
    try:
        return to_uint8(load_image(path).rgb)
    except (GradfxError, OSError):  # replaced while read: the next look gets it
        return None


class ProgressWriter:
    """The worker's progress callback: ``writer(event)`` for a run or chain, ``writer.batch(event)`` for a
    batch's events; each writes ``progress.json`` at most every :data:`INTERVAL` seconds (and a stage's last
    step always) and ``preview.png`` at most every :data:`PREVIEW_INTERVAL` seconds."""

    def __init__(self, job: Job, interval: float = INTERVAL, preview_interval: float = PREVIEW_INTERVAL) -> None:
        self.job = job
        self.interval, self.preview_interval = interval, preview_interval
        self._last = self._last_preview = 0.0
        self._blocked_until = 0.0
        self._batch: dict[str, Any] | None = None
        self._losses: list[float] = []
        self._step: Any = None

    def __call__(self, event: ProgressEvent) -> None:
        if (event.chain_step, self._batch and self._batch.get("item")) != self._step:  # another step or item
            self._step = (event.chain_step, self._batch and self._batch.get("item"))
            self._losses.clear()
        self._losses = [*self._losses[-(LOSSES - 1):], event.loss]
        now = time.monotonic()
        if now < self._blocked_until:
            return
        if now - self._last >= self.interval or event.step >= event.steps:
            self._last = now
            self._write(event)
        if now - self._last_preview >= self.preview_interval and time.monotonic() >= self._blocked_until:
            self._last_preview = now
            preview = event.preview()
            if preview is not None:
                self._guard(lambda: self.job.write(PREVIEW, _png(preview)))

    def batch(self, event: Any) -> None:
        """A :class:`~gradfx.engine.batch.BatchEvent`: its counts, and its item's step event if it has one."""
        if event.status == "notice":
            print(f"gradfx: warning: {event.message}", file=sys.stderr, flush=True)
            return
        self._batch = {f.name: getattr(event, f.name) for f in fields(event) if f.name != "step"}
        if event.step is not None:
            self(event.step)
        else:  # an item started or finished: always written
            self._write(None)

    def _write(self, event: ProgressEvent | None) -> None:
        import json

        data = {"event": event.to_dict() if event is not None else None, "batch": self._batch,
                "written": time.time(), "losses": self._losses}
        self._guard(lambda: self.job.write(PROGRESS, json.dumps(data, default=str)))

    def _guard(self, write: Any) -> None:
        try:
            write()
        except GradfxError as exc:  # a JobError: "job ID: ..."
            print(f"gradfx: {exc}; progress not recorded, the run goes on; trying again in {RETRY:.0f}s",
                  file=sys.stderr, flush=True)
            self._blocked_until = time.monotonic() + RETRY


def _png(image: np.ndarray) -> Any:
    """A writer of ``image`` (a run's preview: H x W x 3, or a batch: its first) as a small PNG."""
    from PIL import Image

    a = np.asarray(image)
    a = a[0] if a.ndim == 4 else a
    a = resize_longest(a, PREVIEW_SIZE) if max(a.shape[:2]) > PREVIEW_SIZE else a
    pixels = to_uint8(a)
    return lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG")


def clear(job: Job) -> None:
    """Forget an earlier session's progress and preview (a resumed job starts showing its own)."""
    for name in (PROGRESS, PREVIEW):
        Path(job.folder / name).unlink(missing_ok=True)
