"""How the fetcher reads pip's configuration and talks to an index over HTTP: pip's precedence between
sections, PEP 691 JSON pages, credentials from the index URL (never carried to another host on a redirect), and
HTTP errors as one-line messages. The index is an HTTP server on 127.0.0.1 in a thread."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

from gradfx.engine.models.index import HashMismatchError, IndexUnreachableError
from gradfx.engine.models.index.client import Client
from gradfx.engine.models.index.networks import Package
from gradfx.engine.models.index.pipconfig import IndexConfig, from_settings, parse, redact

ARCHIVE = b"pretend this is a wheel" * 100
PACKAGE = Package("some-pkg", "1.0", "some_pkg-1.0-py3-none-any.whl", hashlib.sha256(ARCHIVE).hexdigest(),
                  len(ARCHIVE), "wheel")


def test_pip_settings_follow_pips_precedence():
    listing = "\n".join([
        "global.index-url='https://global.example/simple'",
        "install.index-url='https://install.example/simple'",
        "global.extra-index-url='https://a.example/simple https://b.example/simple'",
        "global.cert='/etc/ssl/corp.pem'",
        ":env:.default-timeout='180'",
        ":env:.trusted-host='a.example'",
        "global.find-links='/opt/wheels'",
        "unrelated line",
        "freeze.index-url='https://not-for-downloads.example/simple'",
    ])
    config = from_settings(parse(listing))
    assert config.index_urls == ("https://install.example/simple", "https://a.example/simple",
                                 "https://b.example/simple")
    assert (config.cert, config.timeout, config.trusted_hosts, config.find_links) == (
        "/etc/ssl/corp.pem", 180.0, ("a.example",), ("/opt/wheels",))
    env_wins = from_settings(parse(listing + "\n:env:.index-url='https://env.example/simple'\n:env:.no-index='1'"))
    assert env_wins.index_urls[0] == "https://env.example/simple" and env_wins.no_index
    assert from_settings(parse("")).index_urls == ("https://pypi.org/simple",)
    assert redact("https://me:s3cret@host.example/simple") == "https://me:***@host.example/simple"


class _Index(http.server.BaseHTTPRequestHandler):
    """A PEP 691 index: the project page needs a login; the file redirects to ``redirect`` (this server when
    None); every request's Authorization header is recorded."""

    seen: list[tuple[str, str | None]]
    redirect: str | None = None
    archive = ARCHIVE

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        login = "Basic " + base64.b64encode(b"me:s3cret").decode()
        if self.path == "/simple/some-pkg/":
            if self.headers.get("Authorization") != login:
                return self._reply(401, b"login please", "text/plain")
            assert "application/vnd.pypi.simple.v1+json" in self.headers.get("Accept", "")
            page = {"files": [{"filename": PACKAGE.filename, "url": "../../files/" + PACKAGE.filename,
                               "hashes": {"sha256": PACKAGE.sha256}}]}
            return self._reply(200, json.dumps(page).encode(), "application/vnd.pypi.simple.v1+json")
        if self.path.startswith("/files/"):
            self.send_response(302)
            self.send_header("Location", f"{self.redirect or ''}/dl/{PACKAGE.filename}")
            self.end_headers()
            return None
        if self.path.startswith("/dl/"):
            return self._reply(200, self.archive, "application/octet-stream")
        return self._reply(404, b"no", "text/plain")

    def _reply(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """``serve(**class attributes)`` -> the base URL of a new index server; all are shut down after."""
    servers = []

    def start(**attributes):
        handler = type("Handler", (_Index,), {"seen": [], **attributes})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _config(url: str) -> IndexConfig:
    return IndexConfig(index_urls=(url,), timeout=10)


def test_json_pages_credentials_and_a_redirect_to_another_host(serve, tmp_path, monkeypatch):
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    files, files_handler = serve()
    base, handler = serve(redirect=files)
    client = Client(_config(base.replace("http://", "http://me:s3cret@") + "/simple"))
    candidate = client.find(PACKAGE)
    assert candidate.sha256 == PACKAGE.sha256 and "s3cret" not in candidate.where
    target = tmp_path / PACKAGE.filename
    progress = []
    client.download(candidate, PACKAGE, target, lambda done, total: progress.append((done, total)))
    assert target.read_bytes() == ARCHIVE and progress[-1] == (len(ARCHIVE), len(ARCHIVE))
    assert handler.seen[0][1] is not None  # the index got the login...
    assert files_handler.seen == [(f"/dl/{PACKAGE.filename}", None)]  # ...the other host never saw it


def test_a_login_refused_and_a_file_that_is_not_the_pinned_one(serve, tmp_path, monkeypatch):
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    base, _handler = serve(archive=ARCHIVE[:-1] + b"!")
    with pytest.raises(IndexUnreachableError, match="refused access \\(HTTP 401\\).*netrc"):
        Client(_config(base + "/simple")).find(PACKAGE)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login me password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    client = Client(_config(base + "/simple"))
    target = tmp_path / "download"
    with pytest.raises(HashMismatchError, match="not the pinned"):
        client.download(client.find(PACKAGE), PACKAGE, target)
    assert not target.exists()


def test_find_links_folders_are_asked_before_the_index(tmp_path):
    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    (folder / PACKAGE.filename).write_bytes(ARCHIVE)
    client = Client(IndexConfig(index_urls=("http://127.0.0.1:1/simple",), find_links=(str(folder),)))
    candidate = client.find(PACKAGE)
    assert Path(candidate.url.removeprefix("file://")) == folder / PACKAGE.filename
    client.download(candidate, PACKAGE, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == ARCHIVE
