"""What the run panel shows of a run, from the engine's progress events (which chain step and how far the whole
run is are the events' own ``chain_step`` and ``run_fraction``): the status line's parts, the time left, the
losses the sparkline draws. No Textual, so it is tested directly."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from gradfx.engine.progress import ProgressEvent


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


#: the run panel's bar counts in thousandths of the whole run (``ProgressEvent.run_fraction``: a chain's
#: steps counted equal)
BAR_TOTAL = 1000


_STEP_AND_EFFECT = re.compile(r"step (\d+)/(\d+) (\S+) · ")
_STAGE = re.compile(r"(?P<label>.*) (?P<i>\d+)/(?P<n>\d+) \((?P<size>\d+x\d+)\)$")


def describe(event: ProgressEvent) -> tuple[str, str]:
    """(what runs, where it is) for the status line, each said once: ``("step 2/3 deepdream", "octave 2/3
    (448x336)")``; a one-step chain and a single stage say only the effect and the size (the engine's stage
    text reads ``step 1/1 feature-vis · feature-vis 1/1 (224x224)``)."""
    head, rest = "", event.stage
    match = _STEP_AND_EFFECT.match(rest)
    if match:
        head = match[0].removesuffix(" · ") if int(match[2]) > 1 else match[3]
        rest = rest[match.end():]
    stage = _STAGE.match(rest)
    if stage:
        rest = stage["size"] if stage["n"] == "1" else f"{stage['label']} {stage['i']}/{stage['n']} ({stage['size']})"
    return head, rest


def eta(event: ProgressEvent, start: tuple[float, int]) -> float | None:
    """Seconds left in the running step, from the time per optimisation step since ``start`` = (elapsed,
    total_step) of its first event: the first step also builds and traces the model (seconds), which the
    engine's own ETA spreads over every step left (0:37 said for an 8 s run). None until a second step."""
    elapsed, done = start
    if event.total_step <= done or event.total_steps <= 0:
        return None
    return (event.elapsed - elapsed) / (event.total_step - done) * max(event.total_steps - event.total_step, 0)


#: the sparkline draws at most this many of the latest losses
SPARK_POINTS = 200
#: a loss further than this many robust standard deviations (1.4826 x the median absolute deviation) from the
#: median is an outlier for the sparkline
SPARK_OUTLIER = 3.0


def sparkline_losses(losses: Sequence[float], points: int = SPARK_POINTS) -> list[float]:
    """The losses the sparkline draws: the latest ``points`` finite ones, outliers (:data:`SPARK_OUTLIER`)
    drawn one level (an eighth of the height) beyond the others. The first losses are often orders of
    magnitude above the rest (style transfer starts from the photograph), and a sparkline scaled from the
    lowest to the highest drew everything after them as a flat line at the bottom; now they stand just above
    and the rest fills the height. The status line keeps the real value."""
    finite = [x for x in losses if math.isfinite(x)][-points:]
    if len(finite) < 3:
        return finite
    values = np.asarray(finite)
    median = float(np.median(values))
    fence = SPARK_OUTLIER * 1.4826 * float(np.median(np.abs(values - median)))
    inliers = values[np.abs(values - median) <= fence]
    if fence == 0 or len(inliers) == len(values):  # most losses are one value, or none stands out
        return finite
    low, high = float(inliers.min()), float(inliers.max())
    level = (high - low) / 8
    return [min(max(x, low - level), high + level) for x in finite]
