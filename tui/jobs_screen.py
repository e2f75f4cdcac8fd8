"""The jobs panel (f6): every background job, running and finished, with its status, progress and what it
runs, and the highlighted one's preview (the latest image of a running job, the output of a finished one).
Enter reattaches to a queued or running job, or opens a finished one's output; c cancels, r resumes, x removes
a finished one's state. It looks again twice a second. Dismissed with ``(action, job id)``: ``attach`` or
``open``, or None."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from gradfx.engine import jobs
from gradfx.engine.errors import GradfxError
from gradfx.engine.images.load import load_image
from gradfx.engine.images.save import SAVE_FORMATS
from gradfx.engine.jobs.store import PREVIEW

from .preview import shrink
from .widgets import Preview

#: seconds between looks at the jobs
REFRESH = 0.5
_STYLE = {"running": "bold green", "queued": "yellow", "done": "", "failed": "bold red", "cancelled": "magenta"}


def job_line(job: jobs.Job, state: dict[str, Any], progress: jobs.Progress | None) -> Text:
    """One job as the panel lists it: id, status, progress, what it runs; a failed job's reason below."""
    status = str(state.get("status"))
    shown = jobs.shown_fraction(status, progress)
    pct = "" if shown is None else f"{shown:4.0%}"
    text = Text.assemble((f"{job.id}  ", "bold"), (f"{status:<9}", _STYLE.get(status, "")), f" {pct:>4}  ",
                         job.request.get("what", "?"))
    if state.get("error") and status != "done":
        text.append(f"\n        {state['error']}", style="dim")
    return text


def output_image(state: dict[str, Any]) -> np.ndarray | None:
    """A finished job's first output, shrunk for the preview (None if it has none or it cannot be read)."""
    outputs = [o for o in state.get("outputs") or [] if o.lower().endswith(tuple(SAVE_FORMATS))]
    if not outputs:
        return None
    try:
        return shrink(load_image(outputs[0]).rgb)
    except (GradfxError, OSError):
        return None


class JobsScreen(ModalScreen[tuple[str, str] | None]):
    """f6; see the module docstring."""

    DEFAULT_CSS = """
    #dialog.jobs { height: 90%; max-width: 120; }
    #job-list { height: auto; max-height: 45%; }
    #job-preview { height: 1fr; min-height: 6; border: round $primary 50%; border-title-color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape,f6,q", "dismiss(None)", "Close"),
        Binding("enter", "choose", "Attach / open", show=False),
        Binding("c", "cancel_job", "Cancel job"),
        Binding("r", "resume_job", "Resume job"),
        Binding("x,delete", "remove_job", "Remove"),
    ]

    def __init__(self, graphics: bool = False) -> None:
        super().__init__()
        self.graphics = graphics
        self.rows: list[tuple[jobs.Job, dict[str, Any]]] = []
        self._shown: tuple[str, float] | None = None  # (job id, what its preview was read from)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="jobs"):
            yield Label("Jobs", classes="dialog-title")
            yield OptionList(id="job-list")
            yield Preview(graphics=self.graphics, id="job-preview")
            yield Static("enter: follow a running job, open a finished one's output · c: cancel · r: resume · "
                         "x: remove a finished one · esc: close", classes="hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#job-preview").border_title = "Preview"
        self.refresh_jobs()
        self.set_interval(REFRESH, self.refresh_jobs)
        self.query_one(OptionList).focus()

    def refresh_jobs(self) -> None:
        rows, options = [], []
        for job in reversed(jobs.all_jobs()):  # the newest first
            try:
                state = job.refresh()
                options.append(Option(job_line(job, state, jobs.read_progress(job)), id=job.id))
            except GradfxError:  # removed meanwhile, or damaged
                continue
            rows.append((job, state))
        listing = self.query_one(OptionList)
        highlighted = self.current()
        self.rows = rows
        listing.clear_options()
        listing.add_options(options or [Option("no jobs yet: ctrl+r runs the chain as one", disabled=True)])
        ids = [job.id for job, _ in rows]
        if rows:
            listing.highlighted = ids.index(highlighted[0].id) if highlighted and highlighted[0].id in ids else 0
        self._show_preview()

    def current(self) -> tuple[jobs.Job, dict[str, Any]] | None:
        index = self.query_one(OptionList).highlighted
        return self.rows[index] if index is not None and 0 <= index < len(self.rows) else None

    @on(OptionList.OptionHighlighted)
    def _show_preview(self) -> None:
        chosen = self.current()
        preview = self.query_one("#job-preview", Preview)
        if chosen is None:
            preview.image, preview.border_subtitle = None, ""
            return
        job, state = chosen
        finished = state.get("status") in jobs.FINISHED
        source = job.folder / PREVIEW
        try:
            stamp = -1.0 if finished else source.stat().st_mtime
        except OSError:
            stamp = 0.0
        if self._shown == (job.id, stamp):
            return
        self._shown = (job.id, stamp)
        image = output_image(state) if finished else jobs.read_preview(job)
        preview.image = image
        preview.border_subtitle = "" if image is None else f"job {job.id}: {'output' if finished else 'live'}"

    @on(OptionList.OptionSelected)
    def action_choose(self) -> None:
        chosen = self.current()
        if chosen is not None:
            job, state = chosen
            self.dismiss(("open" if state.get("status") in jobs.FINISHED else "attach", job.id))

    def _act(self, do: Any, done: str) -> None:
        chosen = self.current()
        if chosen is None:
            return
        try:
            do(chosen[0])
        except GradfxError as exc:
            self.notify(str(exc), severity="warning", timeout=8)
            return
        self.notify(done.format(id=chosen[0].id))
        self.refresh_jobs()

    def action_cancel_job(self) -> None:
        self._act(jobs.cancel, "job {id}: cancelling; it stops after its current step and keeps the image so far")

    def action_resume_job(self) -> None:
        self._act(jobs.resume, "job {id} queued again: it resumes from its checkpoint (enter follows it)")

    def action_remove_job(self) -> None:
        self._act(lambda job: jobs.clean([job]), "job {id} removed (its output stays)")
