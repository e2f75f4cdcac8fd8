"""The TUI's runs: checking the chain before a run, running it in a thread worker with throttled progress and
preview messages, showing the result, cancelling. A mixin of :class:`~gradfx.tui.app.GradfxApp`."""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any

from textual import work

from gradfx.engine.errors import GradfxError
from gradfx.engine.progress import CancelToken, ProgressEvent
from gradfx.engine.running import api
from gradfx.engine.running.execute import execute
from gradfx.engine.running.plan import Plan, complete, draft

from .messages import PreviewReady, RunFailed, RunFinished, RunProgress, RunStarted
from .preview import shrink
from .widgets import RunPanel

#: seconds between preview copies from the engine thread
PREVIEW_INTERVAL = 0.4
#: seconds between progress messages (the last step of a stage is always sent)
PROGRESS_INTERVAL = 0.1
#: the title of the toast ctrl+r shows when a step does not validate
FIX_FIRST = "Fix this first"


class RunMixin:
    """ctrl+r, esc and what a run posts (RunStarted, RunProgress, PreviewReady, RunFinished)."""

    #: the fall-backs said when the run started (Plan.notices): not said again when it ends
    _said: tuple[str, ...] = ()

    def _validated_steps(self) -> tuple[list[tuple[str, dict[str, Any], str | None]], Plan] | None:
        """The chain's steps as asked and their checked plan (TensorFlow-free: models are looked up when it
        runs), or None after showing what to fix."""
        if not self.chain:
            self.notify("The chain is empty: choose an effect on the left and press enter.", severity="warning")
            return None
        steps = []
        for i, step in enumerate(self.chain, 1):
            eff = self.registry.effects.get(step.effect)
            if eff is None:
                self._error("Unknown effect", f"step {i}: effect {step.effect!r} is not registered "
                                              "(a plugin may have failed to load); remove the step")
                return None
            try:
                steps.append((step.effect, step.params(eff), step.model))
            except GradfxError as exc:
                return self._fix_step(i, exc)
        first = self.registry.effects[steps[0][0]]
        try:
            plan = draft([api.Step(e, p, m) for e, p, m in steps], self.loaded if first.needs_input else None,
                         weights=self.weights, seed=self.seed, device=self.device, registry=self.registry,
                         longest_side=self.longest_side, input_fix="press ctrl+o to open one",
                         layer_fix="choose model {model} in the step's form")
        except GradfxError as exc:
            return self._fix_step(getattr(exc, "step", None) or 1, exc)
        return steps, plan

    def _fix_step(self, index: int, exc: GradfxError) -> None:
        """Show step ``index``'s form (it has to be visible to fix the value), focus the field at fault and say
        what is wrong."""
        self.current = index - 1
        self.screen.remove_class("-show-run")
        step = self.chain[index - 1] if 0 < index <= len(self.chain) else None
        eff = self.registry.effects.get(step.effect) if step is not None else None
        self.run_worker(self._show_problem(step.problems(eff) if step and eff else {}), group="chain")
        self.notify(str(exc), title=FIX_FIRST, severity="error", timeout=8)

    async def _show_problem(self, problems: dict[str, str]) -> None:
        """The step's form, with the field of its first problem focused and its text selected."""
        await self._refresh_chain()
        name = next(iter(problems), "")
        if name:
            self.focus_param(name)

    def _forget_fix_first(self) -> None:
        """Withdraw ctrl+r's "fix this first" toast once every step validates (it stayed up after the
        path was fixed)."""
        if any(step.problems(eff) for step, eff in zip(self.chain, self._effects(), strict=True) if eff):
            return
        notifications = getattr(self, "_notifications", None)
        for note in list(notifications or ()):
            if note.title == FIX_FIRST:
                self._unnotify(note)

    def action_run(self) -> None:
        if self.running:
            self.notify("A run is in progress: esc cancels it.", severity="warning")
            return
        validated = self._validated_steps()
        if validated is None:
            return
        steps, plan = validated
        self._said = ()
        self.token = CancelToken()
        self.running = True
        self.refresh_bindings()
        self.screen.add_class("-show-run")
        self.query_one(RunPanel).reset(f"starting {' → '.join(e for e, _, _ in steps)}: loading the model "
                                       f"({self.weights} weights)…")
        self.post_message(RunStarted(steps))
        self._run(plan, self.token)

    @work(thread=True, exit_on_error=False, group="run", name="run")
    def _run(self, plan: Plan, token: CancelToken) -> None:
        from gradfx.engine.models import device as devices

        devices.quiet_tensorflow()
        losses: list[float] = []  # the current chain step's: the sparkline shows one step's curve
        last: dict[str, Any] = {"progress": 0.0, "preview": time.monotonic(), "step": None}

        def progress(event: ProgressEvent) -> None:
            if event.chain_step != last["step"]:
                last["step"] = event.chain_step
                losses.clear()
            losses.append(event.loss)
            now = time.monotonic()
            if now - last["progress"] >= PROGRESS_INTERVAL or event.step >= event.steps:
                last["progress"] = now
                self.post_message(RunProgress(dataclasses.replace(event, _preview=None), list(losses)))
            if now - last["preview"] >= PREVIEW_INTERVAL:
                last["preview"] = now
                preview = event.preview()
                if preview is not None:
                    self.post_message(PreviewReady(shrink(preview)))

        plan = complete(plan)  # the layers against the models: a refusal comes before any fall-back is said
        self.call_from_thread(self._say_before_run, tuple(plan.notices))
        result = execute(plan, progress=progress, cancel=token)
        self.post_message(RunFinished(result, token.cancelled))

    def _say_before_run(self, notices: tuple[str, ...]) -> None:
        """The fall-backs the run takes, before any compute (they came as toasts at its end, over the result)."""
        self._said = notices
        for line in notices:
            self.notify(tui_advice(line), title="Before this run", severity="warning", timeout=10)

    def on_gradfx_app_run_progress(self, message: RunProgress) -> None:
        self.query_one(RunPanel).show_event(message.event, message.losses)

    def on_gradfx_app_preview_ready(self, message: PreviewReady) -> None:
        if self.running:
            self._show_image(message.image, "live")

    def on_gradfx_app_run_finished(self, message: RunFinished) -> None:
        self.running = False
        self.refresh_bindings()
        self.result = message.result
        report = message.result.report
        h, w = message.result.image.shape[:2]
        self._show_image(shrink(message.result.image),
                         f"result {w}×{h}" + (" (partial)" if message.result.partial else ""))
        panel = self.query_one(RunPanel)
        seconds = report.get("seconds", 0.0)
        if message.result.partial:
            why = "cancelled" if message.cancelled else "stopped early"
            panel.status(f"{why} after {seconds:.1f}s: the image so far is kept — ctrl+s saves it")
        else:
            panel.status(f"done in {seconds:.1f}s — ctrl+s saves the output")
            bar = panel.query_one("#bar")
            bar.update(progress=bar.total)  # type: ignore[attr-defined]
        warnings = [w for r in report.get("reports", [report]) for w in r.get("warnings", [])]
        for warning in dict.fromkeys(warnings):
            if warning not in self._said:
                self.notify(tui_advice(warning), title="Warning", severity="warning", timeout=8)


    def _run_failed(self, error: BaseException) -> None:
        self.running = False
        self.refresh_bindings()
        self.query_one(RunPanel).status("failed — see the error; fix it and press ctrl+r again")
        self._show_input()  # not the last live image, still captioned "live"
        self.post_message(RunFailed(error))
        self._error("The run failed", error)

    def action_cancel(self) -> None:
        if self.running and self.token is not None:
            self.token.cancel()
            self.query_one(RunPanel).status("cancelling after the current step…")


_WEIGHTS_FLAGS = ((re.compile(r"--weights random (?:/|or) --weights PATH"),
                   "Weights: random or Weights: a file… in the command palette (ctrl+p)"),
                  (re.compile(r"--weights (auto|imagenet|random)"), r"Weights: \1 in the command palette (ctrl+p)"),
                  (re.compile(r"--weights PATH"), "Weights: a file… in the command palette (ctrl+p)"))


def tui_advice(message: str) -> str:
    """An engine message whose fix names the command line's --weights, in the TUI's words (its palette)."""
    for pattern, words in _WEIGHTS_FLAGS:
        message = pattern.sub(words, message)
    return message
