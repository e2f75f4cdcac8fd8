"""``gradfx tui [IMAGE]``: the terminal UI. Textual is imported only when this command runs."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .run import WEIGHTS_HELP


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tui", help="the terminal UI: choose, chain, configure, run and preview effects")
    p.add_argument("image", nargs="?", help="input image to start with (ctrl+o opens another)")
    p.add_argument("--recipe", metavar="FILE.toml", help="start with this recipe's chain")
    p.add_argument("--weights", default="auto", help=WEIGHTS_HELP)
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed repeats a CPU run exactly")
    p.add_argument("--device", default=None, help="cpu, gpu or gpu:N (default: a GPU if there is one)")
    p.add_argument("--size", type=int, metavar="PX", help="resize the input to this longest side first")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="also load this Python module as a plugin (for trying a plugin without installing it)")
    p.add_argument("--no-graphics", action="store_true",
                   help="draw the preview with half-cell blocks even where the terminal shows real pixels")
    p.add_argument("--no-jobs", action="store_true",
                   help="run chains inside the app, not as background jobs (quitting or a lost connection then "
                        "stops them)")
    p.set_defaults(func=main)


@contextmanager
def _stderr_to_log(keep: bool) -> Iterator[Path | None]:
    """Send file descriptor 2 to a log file while the UI runs, so TensorFlow's C++ start-up lines cannot draw
    over the screen; Textual keeps writing to the terminal through a duplicate of the original stderr. The log
    is deleted at once (nothing is left in the temporary folder, even if the session is killed) unless
    ``keep``; then its path is yielded."""
    try:
        saved = os.dup(2)
    except OSError:
        yield None
        return
    fd, name = tempfile.mkstemp(prefix="gradfx-tui-", suffix=".log")
    if not keep:
        os.unlink(name)
    original = sys.__stderr__
    terminal = os.fdopen(saved, "w", buffering=1, encoding=getattr(original, "encoding", None) or "utf-8",
                         errors="replace")
    os.dup2(fd, 2)
    os.close(fd)
    sys.__stderr__ = terminal  # Textual's driver writes to sys.__stderr__
    try:
        yield Path(name) if keep else None
    finally:
        terminal.flush()
        os.dup2(saved, 2)
        sys.__stderr__ = original
        terminal.close()


def main(args: argparse.Namespace) -> int:
    from gradfx.engine.registry import PluginInfo, get_registry

    # TensorFlow is imported by the app in the background (it takes seconds); only quieten it here
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.image and not Path(args.image).is_file():
        from gradfx.engine.errors import ImageError

        raise ImageError(f"{args.image}: no such file; check the path")
    registry = get_registry()
    for name in args.plugin:
        if name in registry.plugins:
            continue
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported in the UI, like an installed one
            registry.plugins[name] = PluginInfo(name, name, errors=[f"import of {name!r} failed: "
                                                                    f"{type(exc).__name__}: {exc}"],
                                                tracebacks=[traceback.format_exc()])
            continue
        registry.add_plugin(module, name, module=name)
    # textual-image asks the terminal what it can draw; that must happen before Textual takes the terminal.
    graphics = False
    if not args.no_graphics and sys.__stdout__ is not None and sys.__stdout__.isatty():
        from textual_image.renderable import HalfcellImage, UnicodeImage
        from textual_image.renderable import Image as Best

        graphics = Best not in (HalfcellImage, UnicodeImage)
        if graphics:
            import textual_image.widget  # noqa: F401 - measures the cell size while it still can

    from gradfx.tui.app import GradfxApp

    app = GradfxApp(args.image, weights=args.weights, seed=args.seed, device=args.device, longest_side=args.size,
                    registry=registry, graphics=graphics, recipe=args.recipe)
    app.use_jobs, app.plugin_modules = not args.no_jobs, tuple(args.plugin)
    debug = bool(os.environ.get("GRADFX_DEBUG"))
    with _stderr_to_log(keep=debug) as log:
        app.run()
    if app.running and app.use_jobs and app.job is not None:
        print(f"gradfx: job {app.job.id} goes on in the background; 'gradfx tui' reattaches to it, 'gradfx jobs' "
              "lists jobs", file=sys.stderr)
    elif app.running:  # quit during a run: the engine thread finishes its current step first
        print("gradfx: stopping the run after its current step…", file=sys.stderr)
    if log is not None:
        if log.stat().st_size:
            print(f"gradfx: TensorFlow's log is in {log}", file=sys.stderr)
        else:
            log.unlink(missing_ok=True)
    return app.return_code or 0
