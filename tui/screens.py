"""Modal screens: the error dialog, the file picker, the path prompt and the keys help."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Collapsible, DirectoryTree, Input, Label, Static

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".gif", ".bmp")
RECIPE_SUFFIXES = (".toml",)


class ErrorDialog(ModalScreen[None]):
    """A failed run, a broken plugin, a file that would not save: the message, and details on request."""

    BINDINGS = [Binding("escape,enter,q", "dismiss", "Close"), Binding("d", "details", "Details")]

    def __init__(self, title: str, message: str, details: str = "") -> None:
        super().__init__()
        self.title_text, self.message, self.details = title, message, details

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="error"):
            yield Label(self.title_text, classes="dialog-title")
            with VerticalScroll(id="error-body"):
                yield Static(self.message, id="error-message", markup=False)
                if self.details:
                    with Collapsible(title="details", collapsed=True):
                        yield Static(self.details, markup=False, id="error-details")
            with Horizontal(classes="buttons"):
                if self.details:
                    yield Static("d: details (the traceback) · esc: close", classes="hint")
                yield Button("Close", variant="error", id="close")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def action_details(self) -> None:
        for details in self.query(Collapsible):  # enter closes the dialog, so d is the key to the details
            details.collapsed = not details.collapsed

    @on(Button.Pressed, "#close")
    def _close(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """A yes / no question: y or enter answers yes, n or escape no."""

    BINDINGS = [Binding("y,enter", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, title: str, message: str, hint: str = "y: yes · n or esc: no") -> None:
        super().__init__()
        self.title_text, self.message, self.hint = title, message, hint

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="prompt"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.message, markup=False)
            yield Static(self.hint, classes="hint", markup=False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class _Tree(DirectoryTree):
    def __init__(self, path: Path, suffixes: tuple[str, ...]) -> None:
        super().__init__(path, id="tree")
        self.suffixes = suffixes

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or _allowed(p, self.suffixes))]


def _allowed(path: Path, suffixes: tuple[str, ...]) -> bool:
    """Whether ``path`` ends in one of ``suffixes`` (which may have two parts, like ``.weights.h5``)."""
    return path.name.lower().endswith(suffixes)


def suffix_list(suffixes: tuple[str, ...]) -> str:
    """``.a, .b or .c``."""
    return " or ".join(filter(None, (", ".join(suffixes[:-1]), suffixes[-1])))


class FilePicker(ModalScreen[Path | None]):
    """Pick a file from a directory tree, or type a path (a folder re-roots the tree)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("backspace", "up", "Parent folder", show=False)]

    def __init__(self, title: str, start: Path | None = None, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> None:
        super().__init__()
        self.title_text, self.suffixes = title, suffixes
        start = (start or Path.cwd()).expanduser()
        self.root = (start if start.is_dir() else start.parent if start.parent.is_dir() else Path.cwd()).resolve()

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="picker"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static("enter: choose · backspace: parent folder · tab: type a path · esc: cancel",
                         classes="hint")
            yield _Tree(self.root, self.suffixes)
            yield Input(placeholder="or type a path and press enter", id="path")

    def on_mount(self) -> None:
        self.query_one(_Tree).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_up(self) -> None:
        self._reroot(self.root.parent)

    def _reroot(self, folder: Path) -> None:
        self.root = folder.resolve()
        tree = self.query_one(_Tree)
        tree.path = self.root
        self.query_one("#path", Input).value = str(self.root) + "/"

    @on(DirectoryTree.FileSelected)
    def _file(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.dismiss(Path(event.path))

    @on(Input.Submitted, "#path")
    def _typed(self, event: Input.Submitted) -> None:
        path = Path(os.path.normpath(Path(event.value.strip()).expanduser()))  # /tmp/x/../y.png is /tmp/y.png
        if not event.value.strip():
            return
        if path.is_dir():
            self._reroot(path)
            self.query_one(_Tree).focus()
        elif path.is_file() and not _allowed(path, self.suffixes):  # the list hides it: so does typing
            self.notify(f"{path.name}: not a {suffix_list(self.suffixes)} file", severity="error")
        elif path.is_file():
            self.dismiss(path)
        else:
            self.notify(f"{path}: no such file or folder", severity="error")


class TextPrompt(ModalScreen[Any]):
    """Ask for one value (prefilled); ``parse`` turns the text into the result or raises ValueError, whose
    message is shown under the field."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str, hint: str = "", parse: Callable[[str], Any] = str) -> None:
        super().__init__()
        self.title_text, self.value, self.hint, self.parse = title, value, hint, parse

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="prompt"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(self.value, id="path")
            yield Static(self.hint or "enter: save · esc: cancel", id="prompt-hint", classes="hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#path")
    def _submit(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            return
        try:
            value = self.parse(event.value.strip())
        except ValueError as exc:
            self.query_one("#prompt-hint", Static).update(f"✗ {exc}")
            return
        self.dismiss(value)


class PathPrompt(TextPrompt):
    """Ask for a path (prefilled); the caller decides what to do with it."""

    def __init__(self, title: str, value: str, hint: str = "") -> None:
        super().__init__(title, value, hint, lambda text: Path(text).expanduser())


KEYS = """\
[b]Anywhere[/]
  tab / shift+tab    next / previous panel or field
  1 2 3 4            effects, chain, parameters, run panel
                     (not in a text field; alt+1… there)
  ctrl+o             open the input image
  ctrl+r or f5       run the chain
  escape             cancel a run or the job followed
                     (keeps the image so far)
  ctrl+s             save the output
  f2 / f3            load / save a recipe
  f4                 run panel or parameters (narrow)
  f6                 jobs: follow, open an output, cancel,
                     resume, remove
  ctrl+p             command palette: weights, seed,
                     "Go to NAME" for a field…
  f1                 this help
  ctrl+q             quit (a job goes on; a run inside the
                     app, with --no-jobs, asks first)

[b]Effects[/] (left)
  up / down          browse; the middle panel describes it
  type a name        jump to it
  enter              add it to the chain

[b]Chain[/]
  up / down          choose the step to edit
  enter              edit its parameters
  shift+up / down    move the step (\\[ and ] too)
  d                  duplicate the step
  x or delete        remove the step

[b]Parameters[/]
  type a value       checked as you type; a red line
                     under the field says what is allowed
  enter              on an empty image field: file picker
  escape             back to the chain
  Browse…            the file picker for that field

[b]File picker[/]
  enter              choose the file, open the folder
  backspace          parent folder
  tab                type a path
  escape             cancel
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter,q,f1", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="help"):
            yield Label("gradfx — keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(KEYS, id="keys")
            yield Static("up / down: scroll · esc: close", classes="hint")
