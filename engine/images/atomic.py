"""Atomic file writes: a temporary file beside the target, fsynced, then moved into place with ``os.replace``,
so a reader never sees a half-written file and a failed write leaves neither a partial output nor a temporary
file. Images (:func:`gradfx.engine.images.save.save_image`), reports, recipes and checkpoints are all written
through :func:`atomic_write`; :func:`output_folder` and :func:`check_target` let commands fail before any
compute.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import stat
from collections.abc import Callable

from ..errors import OutputError, one_line

__all__ = ["atomic_write", "check_target", "new_tmp", "output_folder", "remove", "same_file"]

PathLike = str | os.PathLike


def check_target(target: pathlib.Path, overwrite: bool) -> None:
    """The folder exists, the target is not a folder, and it is new unless ``overwrite``."""
    folder = target.parent
    if not folder.is_dir():
        raise OutputError(
            f"{target}: folder {str(folder) or '.'!r} does not exist; create it first (mkdir -p)"
            if not folder.exists()
            else f"{target}: {str(folder)!r} is not a folder; choose another output path"
        )
    if target.is_dir():
        raise OutputError(f"{target}: is a folder; give a file name for the output")
    if not overwrite and os.path.lexists(target):
        raise OutputError(f"{target}: exists; pass --overwrite to replace it, or choose another name")


def atomic_write(
    path: PathLike, write_fn: Callable[[pathlib.Path], None], *, overwrite: bool = True, mode: int | None = None
) -> pathlib.Path:
    """Write ``path`` atomically: ``write_fn(tmp_path)`` fills a temporary file, which then replaces ``path``.

    The temporary file sits in the same folder (so ``os.replace`` is atomic) and its name ends with the
    final file name, so suffix checks (``.weights.h5``, ``.png``) still pass. It is fsynced before the
    move and removed if anything fails, including an exception from ``write_fn``, which propagates
    unchanged. With ``overwrite=False`` an existing ``path`` is never replaced (checked atomically where
    the file system supports hard links). The new file gets ``mode`` if given (``0o600``: a private state
    file), else the mode of the file it replaces, or the usual ``0o666 & ~umask``. Folder problems raise
    :class:`OutputError`.
    """
    target = pathlib.Path(path)
    folder = target.parent
    check_target(target, overwrite)
    try:
        existing_mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        existing_mode = None

    tmp = new_tmp(target)
    try:
        write_fn(tmp)  # its exceptions propagate unchanged (after the clean-up below)
    except BaseException:
        remove(tmp)
        raise
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if mode is None:
            mode = existing_mode if existing_mode is not None else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, target)
        else:
            _move_no_clobber(tmp, target)
    except FileExistsError:
        remove(tmp)
        raise OutputError(
            f"{target}: exists; pass --overwrite to replace it, or choose another name"
        ) from None
    except OSError as exc:
        remove(tmp)
        raise OutputError(
            f"{target}: cannot write ({one_line(exc)}); check the folder and free disk space"
        ) from exc
    except BaseException:
        remove(tmp)
        raise
    _fsync_dir(folder)
    return target


def new_tmp(target: pathlib.Path) -> pathlib.Path:
    """Create an empty temporary file beside ``target`` (for :func:`atomic_write`, or to prove the folder
    writable); a folder that refuses it (permissions, read-only file system) raises :class:`OutputError`."""
    folder = target.parent
    tmp = folder / f".{secrets.token_hex(4)}.tmp-{target.name}"
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise OutputError(
            f"{target}: cannot write in {str(folder) or '.'!r} ({one_line(exc)}); check the folder's "
            "permissions or choose another output path"
        ) from None
    return tmp


def remove(tmp: pathlib.Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _move_no_clobber(tmp: pathlib.Path, target: pathlib.Path) -> None:
    try:
        os.link(tmp, target)  # fails with FileExistsError if target appeared meanwhile
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network / FAT file systems): best effort
        if os.path.lexists(target):
            raise FileExistsError(str(target)) from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def _fsync_dir(folder: pathlib.Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def same_file(a: PathLike, b: PathLike) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links and case-insensitive file systems
    except OSError:
        return False


def output_folder(path: PathLike, what: str = "output folder") -> pathlib.Path:
    """Create the folder ``path`` (and its parents) if needed and prove it takes new files, for commands to
    call before any compute; a file in the way or an unwritable place raises :class:`OutputError`."""
    folder = pathlib.Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = "a file is in the way" if isinstance(exc, FileExistsError) else exc.strerror or exc
        raise OutputError(f"{what} {str(folder)!r} cannot be created ({why}); choose another folder") from None
    remove(new_tmp(folder / "probe"))  # not check_output_path: a folder needs no extension or protect checks
    return folder
