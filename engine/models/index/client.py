"""Finding and downloading a pinned archive through the package index the user's pip is configured for.

Why not ``pip download``: for a source distribution pip prepares the metadata after downloading, which runs
the archive's ``setup.py`` (checked with pip 23.2: a marker file written by ``setup.py`` appears even with
``--no-deps --no-binary :all: --require-hashes``, after the hash check, with or without build isolation).
gradfx never runs code from what it fetches, so it asks the index itself, the way pip does: the simple
repository API (PEP 691 JSON, or PEP 503 HTML) of every index in pip's configuration (:mod:`.pipconfig`),
plus pip's ``find-links`` folders and pages, with pip's proxy, certificates, client certificate, trusted
hosts, timeout and credentials (in the index URL, ``~/.netrc`` or keyring). The one file whose name the
catalogue pins is streamed to disk with its size capped at the pinned size, and its sha256 checked against the
pin before anything reads it. ``file://`` indexes work too (a folder ``<project>/index.html``, as pip reads
them).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import netrc
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any

from ...errors import one_line
from ...version import __version__
from .archive import copy_capped
from .errors import FetchError, HashMismatchError, IndexUnreachableError, NotOnIndexError
from .networks import Package
from .pipconfig import IndexConfig, redact

__all__ = ["Candidate", "Client"]

_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.1, "
           "text/html;q=0.01")
_PAGE_LIMIT = 64 << 20  # an index page larger than this is not an index page


@dataclass(frozen=True)
class Candidate:
    """The pinned archive as one location lists it: its URL and the sha256 the location advertises."""

    url: str
    sha256: str | None
    where: str


@dataclass
class _Response:
    stream: IO[bytes]
    url: str
    content_type: str
    length: int | None


class _Links(HTMLParser):
    """The ``<a href>`` links of a PEP 503 page (or a find-links page): (href, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def _project(name: str) -> str:
    """PEP 503's normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


class Client:
    """Asks the configured indexes for a pinned archive and downloads it, hash-checked."""

    def __init__(self, config: IndexConfig) -> None:
        self.config = config
        self._credentials: dict[str, tuple[str, str]] = {}
        self._urls = [self._strip_credentials(url) for url in config.index_urls]
        verified, unverified = _tls(config)
        proxies = {"http": config.proxy, "https": config.proxy} if config.proxy else None
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler(proxies), _HTTPSHandler(verified, unverified, config.trusted_hosts))

    def _strip_credentials(self, url: str) -> str:
        """The URL without ``user:password@``, which is kept for requests to that host (as pip does)."""
        parts = urllib.parse.urlsplit(url)
        if parts.username is None:
            return url
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        self._credentials[netloc] = (urllib.parse.unquote(parts.username),
                                     urllib.parse.unquote(parts.password or ""))
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    # -- finding ---------------------------------------------------------------------------------------------

    def find(self, package: Package) -> Candidate:
        """The archive's location: from pip's find-links, then its indexes in pip's order.

        A location that lists the file with another sha256 is passed over; none listing it at all raises
        :class:`NotOnIndexError`, or :class:`IndexUnreachableError` when some index could not be asked.
        """
        unreachable: list[str] = []
        mismatched: list[Candidate] = []
        for location in self._locations():
            try:
                found = self._listed(location, package)
            except IndexUnreachableError as exc:
                unreachable.append(str(exc))
                continue
            for candidate in found:
                if candidate.sha256 in (None, package.sha256):
                    return candidate
                mismatched.append(candidate)
        if mismatched:
            first = mismatched[0]
            raise HashMismatchError(f"{first.where} lists {package.filename} with sha256 {first.sha256}, not the "
                                    f"pinned {package.sha256}: a different file under the same name; refusing it")
        if unreachable:
            raise IndexUnreachableError(unreachable[0] if len(unreachable) == 1 else
                                        f"{unreachable[0]} (and {len(unreachable) - 1} more)")
        raise NotOnIndexError(f"{package.filename} ({package.name} {package.version}) is not on "
                              f"{self.config.where}; download it from {package.page} and run "
                              "gradfx weights import FILE, or point pip at an index that has it")

    def _locations(self) -> Iterator[tuple[str, bool]]:
        """(location, is an index) in the order they are asked: find-links first (local, cheap), then indexes."""
        for link in self.config.find_links:
            yield link, False
        if not self.config.no_index:
            for url in self._urls:
                yield url, True

    def _listed(self, location: tuple[str, bool], package: Package) -> list[Candidate]:
        """The entries for ``package.filename`` at one location (an index, or a find-links folder or page)."""
        where, is_index = location
        if not is_index and "://" not in where:  # a find-links folder
            path = Path(where).expanduser() / package.filename
            return [Candidate(path.resolve().as_uri(), None, where)] if path.is_file() else []
        url = f"{where.rstrip('/')}/{_project(package.name)}/" if is_index else where
        page = self._open(url, accept=_ACCEPT, missing_ok=True)
        if page is None:
            return []
        with contextlib.closing(page.stream):
            body = page.stream.read(_PAGE_LIMIT)
        entries = (_json_files(body, page.url) if "json" in page.content_type or body.lstrip()[:1] == b"{"
                   else _html_files(body, page.url))
        return [Candidate(url, sha, redact(where)) for name, url, sha in entries if name == package.filename]

    # -- downloading -----------------------------------------------------------------------------------------

    def download(self, candidate: Candidate, package: Package, target: Path,
                 progress: Callable[[int, int], None] | None = None) -> None:
        """Stream the archive into ``target`` (at most the pinned size) and check its sha256 against the pin.

        Raises :class:`HashMismatchError` for a file of another size or hash (``target`` is then removed),
        :class:`IndexUnreachableError` when the transfer breaks off; write errors propagate as OSError.
        """
        response = self._open(candidate.url)
        assert response is not None
        with contextlib.closing(response.stream):
            if response.length is not None and response.length != package.size:
                raise HashMismatchError(f"{package.filename} from {candidate.where} is {response.length} bytes, "
                                        f"not the pinned {package.size}; refusing it")
            digest, size = copy_capped(lambda n: self._read(response, package, n), target, package.size,
                                       f"{package.filename} from {candidate.where}",
                                       progress and (lambda done: progress(done, package.size)))
        if (digest, size) != (package.sha256, package.size):
            target.unlink()
            raise HashMismatchError(
                f"{package.filename} from {candidate.where} has sha256 {digest} ({size} bytes), not the pinned "
                f"{package.sha256} ({package.size}): refusing it, nothing was read from it")

    def _read(self, response: _Response, package: Package, size: int) -> bytes:
        try:
            return response.stream.read(size)
        except (OSError, http.client.HTTPException) as exc:
            raise IndexUnreachableError(f"the download of {package.filename} from {_host(response.url)} broke "
                                        f"off ({one_line(exc)}); run the fetch again") from None

    # -- requests --------------------------------------------------------------------------------------------

    def _open(self, url: str, accept: str | None = None, missing_ok: bool = False) -> _Response | None:
        """Open ``url`` (file, http or https); None for a missing page when ``missing_ok``."""
        if url.startswith("file:"):
            return _open_file(url, missing_ok)
        request = urllib.request.Request(url, headers={"User-Agent": f"gradfx/{__version__}"})
        if accept:
            request.add_header("Accept", accept)
        login = self._login(request.host)
        for attempt in range(2):
            if login:  # not carried over a redirect to another host
                token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode("ascii")
                request.add_unredirected_header("Authorization", f"Basic {token}")
            try:
                reply = self._opener.open(request, timeout=self.config.timeout)
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code in (404, 410) and missing_ok:
                    return None
                if exc.code == 401 and attempt == 0 and (login := self._keyring(url, login)):
                    continue
                raise IndexUnreachableError(_http_error(url, exc.code, exc.reason)) from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                raise IndexUnreachableError(
                    f"the package index {redact(url)} is unreachable ({one_line(reason)}); check pip's index-url, "
                    "proxy and cert (python -m pip config list), or copy the archives over by hand and run "
                    "gradfx weights import FILE") from None
            length = reply.headers.get("Content-Length")
            return _Response(reply, reply.geturl(), reply.headers.get("Content-Type", ""),
                             int(length) if length and length.isdigit() else None)
        raise AssertionError("unreachable")

    def _login(self, netloc: str) -> tuple[str, str] | None:
        """Credentials for a host: from an index URL, else from ~/.netrc (or $NETRC)."""
        if netloc in self._credentials:
            return self._credentials[netloc]
        try:
            entry = netrc.netrc(os.environ.get("NETRC")).authenticators(netloc.split(":")[0])
        except (OSError, netrc.NetrcParseError):
            return None
        return (entry[0], entry[2] or "") if entry else None

    def _keyring(self, url: str, login: tuple[str, str] | None) -> tuple[str, str] | None:
        """Credentials from the keyring package (pip's keyring-provider import), if installed and enabled."""
        if not self.config.keyring:
            return None
        try:
            import keyring

            found = keyring.get_credential(url, login[0] if login else None)
        except Exception:  # no keyring, or a backend that fails: pip too goes on without
            return None
        return (found.username, found.password) if found else None


class _HTTPSHandler(urllib.request.HTTPSHandler):
    """HTTPS with pip's certificates, and without verification for pip's trusted hosts only."""

    def __init__(self, verified: ssl.SSLContext, unverified: ssl.SSLContext, trusted: tuple[str, ...]) -> None:
        super().__init__(context=verified)
        self._verified, self._unverified, self._trusted = verified, unverified, set(trusted)

    def https_open(self, req: urllib.request.Request) -> Any:
        host = req.host
        trusted = host in self._trusted or host.split(":")[0] in self._trusted
        return self.do_open(http.client.HTTPSConnection, req,
                            context=self._unverified if trusted else self._verified)


def _tls(config: IndexConfig) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """TLS contexts: pip's ``cert`` (else the system's certificates plus certifi's, pip's default bundle) and
    ``client-cert``; and one that verifies nothing, for pip's trusted hosts."""
    try:
        verified = ssl.create_default_context(cafile=config.cert)
        if config.cert is None:
            with contextlib.suppress(ImportError, OSError, ssl.SSLError):
                import certifi

                verified.load_verify_locations(certifi.where())
        if config.client_cert:
            verified.load_cert_chain(config.client_cert)
    except (OSError, ssl.SSLError) as exc:
        raise FetchError(f"pip's cert or client-cert cannot be used ({one_line(exc)}); fix it in pip's "
                         "configuration (python -m pip config list)") from None
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    return verified, unverified


def _open_file(url: str, missing_ok: bool) -> _Response | None:
    """A ``file:`` URL; a folder stands for its ``index.html``, as pip reads ``file://`` indexes."""
    path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    if path.is_dir():
        path = path / "index.html"
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        if missing_ok and isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            return None
        raise IndexUnreachableError(f"cannot read {url} ({one_line(exc)}); check pip's index-url and "
                                    "find-links (python -m pip config list)") from None
    return _Response(stream, path.as_uri(), "text/html", os.fstat(stream.fileno()).st_size)


def _json_files(body: bytes, base: str) -> list[tuple[str, str, str | None]]:
    """(file name, absolute URL, sha256) of a PEP 691 project page."""
    try:
        files = json.loads(body).get("files", [])
    except (ValueError, AttributeError):
        return []
    out = []
    for item in files if isinstance(files, list) else []:
        if isinstance(item, dict) and isinstance(item.get("filename"), str) and isinstance(item.get("url"), str):
            hashes = item.get("hashes") if isinstance(item.get("hashes"), dict) else {}
            out.append((item["filename"], urllib.parse.urljoin(base, item["url"]), hashes.get("sha256")))
    return out


def _html_files(body: bytes, base: str) -> list[tuple[str, str, str | None]]:
    """(file name, absolute URL without fragment, sha256 from ``#sha256=``) of a PEP 503 page."""
    parser = _Links()
    parser.feed(body.decode("utf-8", errors="replace"))
    out = []
    for href, text in parser.links:
        url, _, fragment = urllib.parse.urljoin(base, href).partition("#")
        name = text or urllib.parse.unquote(url.rstrip("/").rsplit("/", 1)[-1])
        algorithm, _, digest = fragment.partition("=")
        out.append((name, url, digest.lower() if algorithm == "sha256" and digest else None))
    return out


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or url


def _http_error(url: str, code: int, reason: object) -> str:
    """The one-line message for an HTTP error answer."""
    if code in (401, 403):
        return (f"the package index {_host(url)} refused access (HTTP {code}); put the credentials in pip's "
                "index-url (https://user:token@host/simple), ~/.netrc or your keyring")
    return f"{redact(url)} answered HTTP {code} {reason}; check pip's index-url (python -m pip config list)"
