"""The run panel: progress bar, status line and loss sparkline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Sparkline, Static

from gradfx.engine.progress import ProgressEvent

from ..run_status import BAR_TOTAL, describe, eta, format_seconds, sparkline_losses


class RunPanel(Vertical):
    """Progress bar, effect / stage / step / ETA / loss line and the loss sparkline."""

    def compose(self) -> ComposeResult:
        yield Static("ready: ctrl+r runs the chain", id="status", markup=False)
        yield ProgressBar(total=1, show_eta=False, id="bar")
        yield Sparkline([], id="losses", summary_function=max)

    def reset(self, text: str) -> None:
        self.query_one("#bar", ProgressBar).update(total=1, progress=0)
        self.query_one("#losses", Sparkline).data = []
        self.border_subtitle = ""
        self._starts: dict[Any, tuple[float, int]] = {}
        self.status(text)

    def status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    def show_event(self, event: ProgressEvent, losses: Sequence[float]) -> None:
        """``losses``: the current chain step's (steps' losses differ by orders of magnitude)."""
        bar = self.query_one("#bar", ProgressBar)
        bar.update(total=BAR_TOTAL, progress=round(event.run_fraction * BAR_TOTAL))
        step = event.chain_step
        starts = getattr(self, "_starts", {})
        start = starts.setdefault(step, (event.elapsed, event.total_step))
        self._starts = starts
        head, where = describe(event)
        of_step = f" for step {step[0]}/{step[1]}" if step and step[1] > 1 else ""  # the later steps' time is unknown
        parts = [head, where, f"step {event.step}/{event.steps}", f"ETA {format_seconds(eta(event, start))}{of_step}",
                 f"loss {event.loss:.4g}"]
        self.status(" · ".join(part for part in parts if part))
        self.query_one("#losses", Sparkline).data = sparkline_losses(losses)
        self.border_subtitle = f"loss{of_step}"
