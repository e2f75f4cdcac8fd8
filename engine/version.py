"""gradfx's version: read from the installed package's metadata, so pyproject.toml is its one source."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("gradfx")
except metadata.PackageNotFoundError:  # pragma: no cover - the source folders imported without any install
    __version__ = "0+unknown"
