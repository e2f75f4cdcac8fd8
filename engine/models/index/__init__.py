"""Trained networks from the package index: the catalogue, fetching, the torch-free reader, the converters and
the cache. Importing this package imports no TensorFlow.

The interface (for ``--weights auto``, ``gradfx weights`` and API callers):

``catalogue() -> tuple[Network, ...]`` and ``network(name) -> Network``
    Each :class:`Network` record: ``name`` (``vgg19-imagenet``, ``inception_v3-imagenet``,
    ``efficientnet_lite0-imagenet``, ``adain-vgg19-encoder``, ``adain-decoder``); ``model``, the gradfx model
    it serves (``vgg19``, ``inception_v3``, ``efficientnet_lite0``, ``adain``); ``package`` (a
    :class:`Package`: ``name``, ``version``, ``filename`` of the archive, ``sha256``, ``size``, ``kind`` sdist
    or wheel, ``page`` on PyPI); ``member`` (its path inside the archive) with ``member_sha256`` and
    ``member_size``; ``licence``; ``description``, one honest line (what it is, the training data, any
    difference from the Keras network); ``converter``, None when the member is the file byte for byte (VGG19:
    Keras' own file, MD5 ``253f8cb515780f3b799900260a226db6`` in ``md5``, cached under Keras' own name so
    ``keras.applications.VGG19(weights="imagenet")`` loads it offline), else a ``"module:NAME"`` of a
    :class:`~.convert.Converter`; ``cache_file``, its name in ``$KERAS_HOME/models``; ``fingerprint``, the
    pinned layer -> (mean, std) that verifies a converted file; ``default``, fetched when no name is given.
``cached(name) -> Path | None``
    The cache file if present and recorded as verified: its sidecar record (``<file>.gradfx.json``) matches
    the catalogue's pins and the file's size and mtime. Cheap; never downloads, never hashes, never imports
    TensorFlow; a file that no longer matches its record is treated as missing. Unknown names raise
    :class:`UnknownNetworkError`.
``fetch(names=None, *, progress=None) -> list[Path]``
    Gets the networks (default: :func:`default_names`, those the built-in effects use) through the package
    index of the user's pip configuration, hash-checked, converted and verified; a second call is a no-op.
    ``progress`` takes :class:`gradfx.engine.ProgressEvent` (download chunks have ``steps`` = bytes; other
    stages ``steps == 0`` and a ``message``). ``GRADFX_OFFLINE=1`` makes a fetch that would download raise
    :class:`OfflineError`.
``import_archive(path, *, progress=None) -> list[Path]``
    The same from an archive (or a member file) copied over by hand, recognised by its sha256.
``status() -> list[Status]``
    Per network: ``path``, ``state`` (cached, unverified or missing) and ``size``, for ``gradfx weights list``.

Using a cached network: ``vgg19-imagenet`` is Keras' file, loaded as ``--weights imagenet`` loads it.
``inception_v3-imagenet`` must be loaded into :func:`.inception.build_inception_v3_fid` (mixed10's pool branch
is a max pool; the file also loads silently into plain ``keras.applications.InceptionV3``, whose mixed10 then
differs by about 25 %) and expects ``(x - 128) / 128``; ``efficientnet_lite0-imagenet`` into
:func:`.efficientnet.build_efficientnet_lite0`; the AdaIN pair into :func:`.adain.build_encoder` /
:func:`.adain.build_decoder`. Errors are :class:`~gradfx.engine.errors.WeightsError` subclasses
(:mod:`.errors`), one line each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .cache import cached, models_dir
from .errors import (
    ArchiveError,
    DiskFullError,
    FetchError,
    FingerprintError,
    ForbiddenGlobalError,
    HashMismatchError,
    IndexUnreachableError,
    NoPipError,
    NotOnIndexError,
    OfflineError,
    UnknownArchiveError,
    UnknownNetworkError,
)
from .fetching import Status, converter, fetch, import_archive, status
from .networks import Network, Package, catalogue, default_names, network
from .pipconfig import read as _read_pip_config

if TYPE_CHECKING:
    import keras


def graph(name: str) -> keras.Model:
    """A converted network's own Keras graph, without weights (its cache file loads into it; InceptionV3's 2015
    graph differs from ``keras.applications.InceptionV3`` in mixed10's pool). Imports TensorFlow."""
    return converter(network(name)).build()


def index_urls() -> tuple[str, ...]:
    """The package indexes of the user's pip configuration, in the order pip asks them; none without a
    working pip or with ``no-index`` (for a probe of whether a fetch could reach one)."""
    try:
        config = _read_pip_config()
    except NoPipError:
        return ()
    return () if config.no_index else config.index_urls

__all__ = ["ArchiveError", "DiskFullError", "FetchError", "FingerprintError", "ForbiddenGlobalError",
           "HashMismatchError", "IndexUnreachableError", "Network", "NoPipError", "NotOnIndexError",
           "OfflineError", "Package", "Status", "UnknownArchiveError", "UnknownNetworkError", "cached",
           "catalogue", "converter", "default_names", "fetch", "graph", "import_archive", "index_urls", "models_dir", "network", "status"]
