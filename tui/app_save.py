"""Saving the TUI's output: the proposed name, the checks the prompt makes while it stays open, the atomic
write in a thread worker. A mixin of :class:`~gradfx.tui.app.GradfxApp`."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from textual import work

from gradfx.engine.errors import GradfxError
from gradfx.engine.images.save import check_output_path

from .messages import OutputSaved
from .paths import short_path
from .screens import PathPrompt
from .widgets import RunPanel


class SaveMixin:
    """ctrl+s, and the save-as prompt that f3 (a recipe) uses too."""

    def _protected(self) -> list[str]:
        paths = [str(self.image_path)] if self.image_path else []
        for step in self.chain:
            eff = self.registry.effects.get(step.effect)
            if eff is not None:  # images, init = a file, direction(L, 'v.npy')...
                paths += [path for _, path in eff.schema.files(step.values)]
        return paths

    def default_output(self) -> Path:
        stem = self.image_path.stem if self.image_path else "gradfx"
        last = self.chain[-1].effect if self.chain else "out"
        if self.result is not None:
            names = self.result.report.get("chain") or [self.result.report.get("effect", last)]
            last = names[-1]
        path = Path(f"{stem}-{last}.png")
        n = 2
        while path.exists():
            path = Path(f"{stem}-{last}-{n}.png")
            n += 1
        return path

    def action_save(self) -> None:
        if self.result is None:
            self.notify("Nothing to save yet: ctrl+r runs the chain.", severity="warning")
            return
        self._ask_path("Save output as", str(self.default_output()), "", self._save, problem=self._output_problem)

    def _ask_path(self, title: str, value: str, hint: str, save: Callable[[Path], None], *,
                  problem: Callable[[Path], str | None] = lambda path: None,
                  normalise: Callable[[Path], Path] = lambda path: path, confirmed: Path | None = None) -> None:
        """Ask where to save, then ``save(path)``. The prompt stays open, keeping the name for editing, while
        ``problem(path)`` has something to say; replacing an existing file takes enter a second time."""
        def chosen(path: Path | None) -> None:
            if path is None:
                return
            path = normalise(path)
            again = partial(self._ask_path, title, str(path), save=save, problem=problem, normalise=normalise)
            why = problem(path)
            if why:
                again(why)
            elif path.exists() and path != confirmed:
                again(f"{path} exists: enter again to replace it, or edit the name", confirmed=path)
            else:
                save(path)

        self.push_screen(PathPrompt(title, value, hint), chosen)

    def _output_problem(self, path: Path) -> str | None:
        """Why ``Result.save`` would refuse ``path`` (an unknown extension, a missing folder, an image the
        chain reads), in the TUI's words; None if it would not."""
        try:
            check_output_path(path)
        except GradfxError as exc:
            return str(exc)
        try:
            check_output_path(path, protect=self._protected())
        except GradfxError:
            return f"{path} is an image the chain reads (the input or a parameter): choose another name"
        return None

    @work(thread=True, exit_on_error=False, group="save")
    def _save(self, path: Path) -> None:
        assert self.result is not None
        written = self.result.save(path, overwrite=True, protect=self._protected())
        self.call_from_thread(self._saved, written)

    def _saved(self, written: list[Path]) -> None:
        self.saved = written[0]
        self.query_one(RunPanel).status(f"saved {short_path(written[0], 60)}"
                                        + (f" and {len(written) - 1} more file(s)" if len(written) > 1 else ""))
        self.notify(f"saved {written[0]}" + (f" (+{len(written) - 1} more)" if len(written) > 1 else ""))
        self.post_message(OutputSaved(list(written)))
