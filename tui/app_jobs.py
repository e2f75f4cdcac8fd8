"""The TUI's runs as background jobs (:mod:`gradfx.engine.jobs`). A mixin of
:class:`~gradfx.tui.app.GradfxApp`, switched on by ``gradfx tui`` (:attr:`JobsMixin.use_jobs`; ``--no-jobs``
keeps runs inside the app).

ctrl+r records the chain as a job (its recipe, the input, the seed, weights, size and device) that writes its
output beside the input's name in the working folder (``<input>-<last effect>.png``, the name ctrl+s
proposes), and follows it: the job's progress and preview files become the same ``RunProgress`` and
``PreviewReady`` messages an in-app run posts, and its end a ``RunFinished`` with the written image (then
``JobFinished``). Quitting the app or losing the connection leaves the job running; a new ``gradfx tui``
reattaches to the newest job a TUI started that is still queued or running (``JobAttached``). Any number of
apps may follow one job: they only read its files. f6 opens the jobs panel (:mod:`.jobs_screen`); escape
cancels the followed job.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gradfx.engine import jobs
from gradfx.engine.errors import GradfxError, JobError
from gradfx.engine.images.load import load_image
from gradfx.engine.jobs.store import PREVIEW
from gradfx.engine.running.api import Step
from gradfx.engine.running.recipes import Recipe, dumps_recipe
from gradfx.engine.running.result import Result

from .jobs_screen import JobsScreen, output_image
from .messages import JobAttached, JobFinished, PreviewReady, RunFinished, RunProgress, RunStarted
from .paths import short_path
from .widgets import RunPanel

#: seconds between looks at the followed job's files
POLL = 0.25


class JobsMixin:
    """ctrl+r as a job, escape cancelling it, f6, and reattaching at start; see the module docstring."""

    #: run chains as background jobs (``gradfx tui`` sets it; an app made in Python runs them inside itself)
    use_jobs = False
    #: modules loaded with ``--plugin``, which a job's worker loads too
    plugin_modules: tuple[str, ...] = ()
    #: the job this app follows, or followed last
    job: jobs.Job | None = None
    _job_timer: Any = None
    _job_seen: tuple[Any, ...] = ()

    def on_mount(self) -> None:
        if self.use_jobs:
            self.call_after_refresh(self._reattach)

    def _reattach(self) -> None:
        """Follow the newest job a TUI started that is still queued or running."""
        live = []
        for job in jobs.all_jobs():
            try:
                if job.request.get("source") == "tui" and job.refresh().get("status") not in jobs.FINISHED:
                    live.append(job)
            except GradfxError:
                continue
        if live:
            self.attach(live[-1])
            more = f" ({len(live) - 1} more running: f6)" if len(live) > 1 else " (f6: every job)"
            self.notify(f"following job {live[-1].id}, still {live[-1].state().get('status')}{more}",
                        title="Reattached", timeout=8)

    # --- starting ----------------------------------------------------------------------------------------------
    def action_run(self) -> None:
        if not self.use_jobs:
            super().action_run()  # type: ignore[misc]
            return
        if self.running:
            self.notify("A job is running: esc cancels it; f6 lists the jobs.", severity="warning")
            return
        validated = self._validated_steps()
        if validated is None:
            return
        steps, _ = validated
        first = self.registry.effects[steps[0][0]]
        source = str(self.image_path) if first.needs_input and self.image_path is not None else None
        output = self.default_output().resolve()
        recipe = Recipe(steps=[Step(e, p, m) for e, p, m in steps])
        spec = {"recipe": "the TUI's chain", "recipe_dir": os.getcwd(), "recipe_text": dumps_recipe(recipe),
                "input": source, "output": str(output), "snapshots": None, "seed": self.seed,
                "weights": self.weights, "model": None, "device": self.device, "size": self.longest_side,
                "report": None, "protect": [str(Path(p).resolve()) for p in self._protected()]}
        what = f"tui: {' -> '.join(e for e, _, _ in steps)}{f' on {source}' if source else ''} -> {output.name}"
        try:
            job = jobs.submit("chain", spec, what=what, devices=jobs.device_keys(self.device),
                              plugins=self.plugin_modules, source="tui")
        except GradfxError as exc:
            self._error("Could not start the job", exc)
            return
        self.post_message(RunStarted(steps))
        self.attach(job)

    # --- following -----------------------------------------------------------------------------------------------
    def attach(self, job: jobs.Job) -> None:
        """Follow ``job`` (a finished one: open its output)."""
        state = job.refresh()
        if state.get("status") in jobs.FINISHED:
            self.open_job_output(job, state)
            return
        self._stop_following()
        self.job, self._job_seen = job, ("", 0.0, 0.0)
        self.running = True
        self.refresh_bindings()
        self.screen.add_class("-show-run")
        self.query_one(RunPanel).reset(f"job {job.id}: {job.request.get('what')}")
        self._job_timer = self.set_interval(POLL, self._follow)
        self.post_message(JobAttached(job.id))

    def _stop_following(self) -> None:
        if self._job_timer is not None:
            self._job_timer.stop()
            self._job_timer = None

    def _follow(self) -> None:
        """Pass on what changed in the followed job's files."""
        job = self.job
        if job is None:
            return
        try:
            state = job.refresh()
            progress = jobs.read_progress(job)
        except GradfxError as exc:  # its state folder was deleted
            self._stop_following()
            self.running = False
            self.refresh_bindings()
            self._error("The job can no longer be followed", exc)
            return
        status, seen_written, seen_preview = self._job_seen
        if state.get("status") == "queued" and status != "queued":
            ahead = jobs.holder(job.request["devices"], job)
            self.query_one(RunPanel).status(f"job {job.id} queued" + (
                f": waiting for job {ahead.id} on {', '.join(job.request['devices'])}" if ahead else "…"))
        written = progress.written if progress is not None else 0.0
        if progress is not None and progress.event is not None and written != seen_written:
            self.post_message(RunProgress(progress.event, progress.losses))
        try:
            stamp = (job.folder / PREVIEW).stat().st_mtime
        except OSError:
            stamp = seen_preview
        if stamp != seen_preview and (image := jobs.read_preview(job)) is not None:
            self.post_message(PreviewReady(image))
        self._job_seen = (state.get("status"), written, stamp)
        if state.get("status") in jobs.FINISHED:
            self._stop_following()
            self._ended(job, state)

    def _ended(self, job: jobs.Job, state: dict[str, Any]) -> None:
        status, outputs = state.get("status"), state.get("outputs") or []
        report = job.report()
        if report is not None and outputs:
            loaded = load_image(outputs[0])
            self.post_message(RunFinished(Result(loaded.rgb, report, loaded.alpha), status == "cancelled"))
            self.post_message(JobFinished(job.id, str(status), list(outputs), state.get("error")))
            return
        self.running = False
        self.refresh_bindings()
        if status == "cancelled":
            self.query_one(RunPanel).status(f"job {job.id} cancelled before it made an image")
            self._show_input()
            return
        self._run_failed(JobError(f"job {job.id} {status}: {state.get('error')}"))

    def on_gradfx_app_job_finished(self, message: JobFinished) -> None:
        seconds = (self.result.report.get("seconds", 0.0) if self.result is not None else 0.0)
        word = {"done": f"done in {seconds:.1f}s", "cancelled": "cancelled: the image so far"}.get(message.status,
                                                                                                    message.status)
        self.query_one(RunPanel).status(f"{word} — job {message.job_id} wrote {short_path(message.outputs[0], 60)}; "
                                        "ctrl+s saves a copy")
        if message.error and message.status == "failed":
            self.notify(message.error, title=f"Job {message.job_id} failed", severity="error", timeout=12)

    def action_cancel(self) -> None:
        if self.job is None or self._job_timer is None:
            super().action_cancel()  # type: ignore[misc]
            return
        try:
            jobs.cancel(self.job)
        except GradfxError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.query_one(RunPanel).status(f"cancelling job {self.job.id} after its current step…")

    # --- the jobs panel ------------------------------------------------------------------------------------------
    def action_jobs(self) -> None:
        def chosen(choice: tuple[str, str] | None) -> None:
            if choice is None:
                return
            try:
                job = jobs.find(choice[1])
                self.attach(job) if choice[0] == "attach" else self.open_job_output(job, job.refresh())
            except GradfxError as exc:
                self._error("Could not open the job", exc)

        self.push_screen(JobsScreen(self.graphics), chosen)

    def open_job_output(self, job: jobs.Job, state: dict[str, Any]) -> None:
        """Show a finished job's output image as the result (ctrl+s saves a copy)."""
        image = output_image(state)
        if image is None:
            self.notify(f"job {job.id} ({state.get('status')}) has no output image to open"
                        + (f": {state['error']}" if state.get("error") else ""), severity="warning", timeout=10)
            return
        if self.job is job or (self.job is not None and self.job.id == job.id):
            self._stop_following()
        loaded = load_image(state["outputs"][0])
        self.result = Result(loaded.rgb, job.report() or {}, loaded.alpha)
        self._show_image(image, f"job {job.id} output {loaded.size[0]}×{loaded.size[1]}")
        self.notify(f"opened job {job.id}'s output {state['outputs'][0]}; ctrl+s saves a copy")
