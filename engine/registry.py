"""The plugin manager: finds plugins, calls their hooks one plugin at a time, validates what they register.

A broken plugin never takes the host down. An import error, an exception inside a hook, a registration that
fails validation or a name already taken is recorded against that plugin (``gradfx plugins`` shows it) and
everything else keeps working. ``GRADFX_PLUGINS`` controls external plugins: unset or ``all`` loads every
installed one, ``none`` loads none, ``name1,name2`` only those (entry-point or distribution names; distribution
names match as pip does, ignoring case and ``-``/``_``/``.``). Plugins left out are listed as disabled, not
imported.

Effects load when the registry is created; models load on first use, because building the model zoo imports
TensorFlow and ``gradfx list`` should not have to.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .effect import EFFECT_NAME, OPTIONAL, Effect
from .errors import PluginError, UnknownEffectError, UnknownModelError, suggest
from .modelspecs import BUILTIN_MODELS, ModelSpec
from .params import RESERVED

ENV_PLUGINS = "GRADFX_PLUGINS"
ENTRY_POINT_GROUP = "gradfx"
BUILTIN = "gradfx"
#: the built-in plugin, named by module as llm and datasette name their default plugins: the engine imports
#: it by name when a registry is made, so ``gradfx.engine`` has no import of ``gradfx.plugins`` (the plugins
#: import the engine), and every ``Registry()`` (the API's included) still has the built-in effects
BUILTIN_MODULE = "gradfx.plugins"
#: what the commonest reserved parameter names are (see :data:`gradfx.engine.params.RESERVED`)
_RESERVED_HINTS = {
    "seed": "the run's seed: --seed, run(seed=...); an effect reads it as ctx.seed",
    "model": "the backbone: --model, a step's model = ...; an effect reads it as ctx.model",
    "weights": "--weights, run(weights=...); an effect reads ctx.weights and ctx.resolved_weights",
    "device": "--device, run(device=...); an effect reads it as ctx.device",
    "effect": "a recipe step's effect = ...",
    "image": "the input image: run(effect, image); an effect reads it as ctx.input",
}


@dataclass
class PluginInfo:
    """What one plugin is and what it did."""

    name: str
    module: str = ""
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    effects: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    disabled: bool = False
    #: how many times the plugin called ``register`` (accepted or not)
    offered: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def registered(self) -> int:
        return len(self.effects) + len(self.models)

    @property
    def status(self) -> str:
        """``ok``, ``failed`` (nothing it offered is usable), ``partly loaded`` (some of its effects or models
        work, something failed) or ``disabled``."""
        if self.disabled:
            return "disabled"
        if self.ok:
            return "ok"
        return "partly loaded" if self.registered else "failed"

    def describe_status(self) -> str:
        """The status in words: ``partly loaded: 1 of 2`` (registrations accepted of those offered), or ``partly
        loaded: 1 registered, then it failed`` when a hook raised after registering."""
        if self.status != "partly loaded":
            return self.status
        if self.offered > self.registered:
            return f"partly loaded: {self.registered} of {self.offered}"
        return f"partly loaded: {self.registered} registered, then it failed"

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("name", "module", "distribution", "version", "builtin",
                                              "effects", "models", "errors", "warnings")}
        out["status"] = self.status
        return out


def normalize_name(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


class PluginFilter:
    """The ``GRADFX_PLUGINS`` policy: a predicate on (entry-point name, distribution name).

    ``names`` is the allow-list (None: everything allowed); :meth:`unmatched` tells which listed names matched
    no installed plugin, so a typo is reported instead of silently loading nothing.
    """

    def __init__(self, value: str | None = None) -> None:
        value = os.environ.get(ENV_PLUGINS, "all") if value is None else value
        self.value = value.strip()
        low = self.value.lower()
        self.names: set[str] | None
        if low in ("", "all", "1", "*"):
            self.names = None
        elif low in ("none", "0", "off", "false"):
            self.names = set()
        else:
            self.names = {v.strip() for v in self.value.split(",") if v.strip()}
        self._seen: set[str] = set()

    def _matches(self, allowed: str, name: str, dist: str | None) -> bool:
        wanted = normalize_name(allowed)
        return allowed == name or wanted == normalize_name(name) or (dist is not None
                                                                     and wanted == normalize_name(dist))

    def __call__(self, name: str, dist: str | None) -> bool:
        if self.names is None:
            return True
        hits = {a for a in self.names if self._matches(a, name, dist)}
        self._seen |= hits
        return bool(hits)

    def unmatched(self) -> list[str]:
        return sorted((self.names or set()) - self._seen)

    def describe(self) -> str:
        if self.names is None:
            return "all external plugins"
        if not self.names:
            return "no external plugins"
        return "only " + ", ".join(sorted(self.names))


def external_filter(value: str | None = None) -> PluginFilter:
    """The ``GRADFX_PLUGINS`` policy as a predicate on (entry-point name, distribution name)."""
    return PluginFilter(value)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:  # running from a source tree without installing
        return None


class Registry:
    """Effects and models registered by the built-in plugin and by installed plugins."""

    def __init__(self, *, builtins: bool = True, external: bool | None = None) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        #: installed plugins that GRADFX_PLUGINS left out (not imported)
        self.disabled: dict[str, PluginInfo] = {}
        #: names in GRADFX_PLUGINS that matched no installed plugin
        self.unmatched_filter: list[str] = []
        self.filter: PluginFilter | None = None
        self.effects: dict[str, Effect] = {}
        self.effect_plugin: dict[str, str] = {}
        self._models: dict[str, Any] = {}
        self.model_plugin: dict[str, str] = {}
        self._models_loaded: set[str] = set()
        self._lock = threading.RLock()
        if builtins:
            self.add_plugin(importlib.import_module(BUILTIN_MODULE), BUILTIN, builtin=True, distribution=BUILTIN,
                            version=_version(BUILTIN))
        if external is not False:
            self.load_entry_points()

    # --- loading ---------------------------------------------------------------------------------------------
    def load_entry_points(self, allow: Callable[[str, str | None], bool] | None = None) -> None:
        """Import and register every installed plugin of the ``gradfx`` entry-point group that ``allow`` (by
        default the ``GRADFX_PLUGINS`` policy) lets through, each in isolation."""
        allow = allow or external_filter()
        if isinstance(allow, PluginFilter):
            self.filter = allow
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            dist_name = dist.name if dist is not None else None
            version = dist.version if dist is not None else None
            info = PluginInfo(ep.name, ep.value, dist_name, version)
            if not allow(ep.name, dist_name):
                info.disabled = True
                self.disabled.setdefault(ep.name, info)
                continue
            if ep.name in self.plugins:  # two distributions (or a distribution and the host) claim one name
                other = self.plugins[ep.name]
                owner = "gradfx itself" if other.builtin else (other.distribution or other.module)
                if other.distribution == dist_name and other.module == ep.value:
                    continue  # the same distribution seen twice on sys.path
                info.name = f"{ep.name} ({dist_name or ep.value})"
                self._fail(info, f"plugin name {ep.name!r} is already taken by {owner}; not loaded. Rename "
                                 f"the entry point in [project.entry-points.gradfx] of {dist_name or ep.value}")
                self.plugins.setdefault(info.name, info)
                continue
            try:
                obj = ep.load()
            except (Exception, SystemExit) as exc:  # any import failure belongs to the plugin
                self._fail(info, f"import of {ep.value!r} failed: {type(exc).__name__}: {exc}")
                self.plugins[info.name] = info
                continue
            self.add_plugin(obj, ep.name, distribution=dist_name, version=version, module=ep.value)
        if isinstance(allow, PluginFilter):
            self.unmatched_filter = [n for n in allow.unmatched() if n != BUILTIN]  # built-ins always load

    def add_plugin(self, obj: Any, name: str, *, builtin: bool = False, distribution: str | None = None,
                   version: str | None = None, module: str | None = None) -> PluginInfo:
        """Register a plugin object (a module or any object with ``@hookimpl`` functions) and run its effect
        hook. Used for entry points and by tests; failures are recorded in the returned info. An object
        already registered (e.g. a module installed as a plugin under its entry-point name and also given to
        ``gradfx tui --plugin``) is not registered again: its existing info is returned."""
        with self._lock:
            registered_as = self.pm.get_name(obj)
            if registered_as is not None and registered_as in self.plugins:
                return self.plugins[registered_as]
            if name in self.plugins:
                raise PluginError(f"a plugin named {name!r} is already registered; choose another name")
            info = PluginInfo(name, module or getattr(obj, "__name__", type(obj).__name__), distribution,
                              version, builtin)
            self.plugins[name] = info
            try:
                self.pm.register(obj, name=name)
            except Exception as exc:  # pluggy's validation: a hookimpl whose arguments do not match the spec
                self._fail(info, f"registration failed: {exc}")
                return info
            # pluggy accepts an implementation of a hook nobody specified (it may be a typo): report it
            unknown = [
                attr for attr in dir(obj)
                if attr not in self._hook_names() and self.pm.parse_hookimpl_opts(obj, attr) is not None
            ]
            for attr in unknown:
                self._fail(info, f"implements unknown hook {attr!r}{suggest(attr, self._hook_names())}")
            self._call(info, "gradfx_register_effects", self._register_effect)
            if "__models__" in self._models_loaded:
                self._call(info, "gradfx_register_models", self._register_model)
            return info

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin and everything it registered (tests use this in fixture teardown)."""
        with self._lock:
            info = self.plugins.pop(name, None)
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
            if info is None:
                return
            for effect in info.effects:
                self.effects.pop(effect, None)
                self.effect_plugin.pop(effect, None)
            for model in info.models:
                self._models.pop(model, None)
                self.model_plugin.pop(model, None)

    def _hook_names(self) -> list[str]:
        """The hooks of the contract (pluggy also lists hooks that only a plugin implements)."""
        names = []
        for n in dir(self.pm.hook):
            caller = getattr(self.pm.hook, n)
            if not n.startswith("_") and getattr(caller, "has_spec", lambda: False)():
                names.append(n)
        return names

    def _fail(self, info: PluginInfo, message: str) -> None:
        info.errors.append(message)
        info.tracebacks.append(traceback.format_exc() if sys.exc_info()[0] is not None else "")

    def _call(self, info: PluginInfo, hook: str, register: Callable[[PluginInfo, Any], None]) -> None:
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            if impl.plugin_name != info.name:
                continue
            kwargs = {"register": lambda thing, _info=info: self._guarded(_info, hook, register, thing)}
            try:  # pluggy lets an implementation take a subset of the spec's arguments
                returned = impl.function(*[kwargs[a] for a in impl.argnames])
            except (Exception, SystemExit) as exc:  # a plugin's bug is the plugin's failure, not ours
                self._fail(info, f"{hook} raised {type(exc).__name__}: {exc}")
                continue
            if returned is not None:
                info.warnings.append(f"{hook} returned {type(returned).__name__}, which is ignored; call "
                                     f"register(thing) for each thing instead")

    def _guarded(self, info: PluginInfo, hook: str, register: Callable[[PluginInfo, Any], None],
                 thing: Any) -> None:
        info.offered += 1
        try:
            register(info, thing)
        except PluginError as exc:
            self._fail(info, f"{hook}: {exc}")
        except Exception as exc:  # noqa: BLE001 - e.g. a property of the effect that raises when validated
            self._fail(info, f"{hook}: validating {thing!r} raised {type(exc).__name__}: {exc}")

    # --- validation ------------------------------------------------------------------------------------------
    def _register_effect(self, info: PluginInfo, effect: Any) -> None:
        if isinstance(effect, type) and issubclass(effect, Effect):
            raise PluginError(f"register() got the class {effect.__name__}; pass an instance: {effect.__name__}()")
        if not isinstance(effect, Effect):
            raise PluginError(f"register() got {effect!r}; an effect must be an instance of gradfx.engine.Effect")
        name = getattr(effect, "name", "")
        if not isinstance(name, str) or not EFFECT_NAME.match(name):
            raise PluginError(f"effect name {name!r} is invalid; use lower-case words joined by '-'")
        if not isinstance(effect.summary, str) or not effect.summary.strip():
            raise PluginError(f"effect {name!r} has no summary; set a one-line summary")
        try:
            effect.schema  # noqa: B018 - builds and validates the parameter schema
        except (TypeError, ValueError) as exc:
            raise PluginError(f"effect {name!r} has invalid parameters: {exc}") from None
        reserved = [p.name for p in effect.schema if p.name in RESERVED]
        if reserved:
            hint = _RESERVED_HINTS.get(reserved[0], "an argument of run()")
            raise PluginError(f"plugin {info.name!r}: effect {name!r}: parameter {reserved[0]!r} is reserved: it "
                              f"is the engine's own ({hint}); rename it, e.g. {name.replace('-', '_')}_{reserved[0]}")
        if type(effect).build is Effect.build and type(effect).run is Effect.run:
            raise PluginError(f"effect {name!r} implements neither build() nor run()")
        if not (isinstance(effect.needs_input, bool) or effect.needs_input == OPTIONAL):
            raise PluginError(f"effect {name!r}: needs_input must be True, False or {OPTIONAL!r}, not "
                              f"{effect.needs_input!r}")
        if not isinstance(effect.at_input_size, bool):
            raise PluginError(f"effect {name!r}: at_input_size must be True or False, not {effect.at_input_size!r}")
        if effect.model is None:  # it reads no backbone: it runs networks of its own
            if effect.models is not None:
                raise PluginError(f"effect {name!r}: model None (no backbone) takes no models, not {effect.models!r}")
        elif not isinstance(effect.model, str) or not effect.model:
            raise PluginError(f"effect {name!r}: model must be a registered model's name (or None: no backbone), "
                              f"not {effect.model!r}")
        self._check_networks(name, effect.networks)
        if effect.models is not None and (
            isinstance(effect.models, str) or not all(isinstance(m, str) for m in effect.models)
            or effect.model not in effect.models
        ):
            raise PluginError(f"effect {name!r}: models must be a tuple of model names that includes its default "
                              f"model {effect.model!r}, not {effect.models!r}")
        if name in self.effects:
            raise PluginError(f"effect {name!r} is already registered by plugin {self.effect_plugin[name]!r}")
        self.effects[name] = effect
        self.effect_plugin[name] = info.name
        info.effects.append(name)

    @staticmethod
    def _check_networks(name: str, networks: Any) -> None:
        """An effect's :attr:`~Effect.networks`: a tuple of the package index's network names."""
        from .models import index

        if isinstance(networks, str) or not isinstance(networks, (tuple, list)):
            raise PluginError(f"effect {name!r}: networks must be a tuple of network names, not {networks!r}")
        for network in networks:
            try:
                index.network(network)
            except index.UnknownNetworkError as exc:
                raise PluginError(f"effect {name!r}: {exc}") from None

    def _register_model(self, info: PluginInfo, spec: Any) -> None:
        if not isinstance(spec, ModelSpec):
            raise PluginError(f"register() got {spec!r}; a model must be a gradfx.engine.ModelSpec")
        if spec.name in self._models:
            raise PluginError(f"model {spec.name!r} is already registered by plugin {self.model_plugin[spec.name]!r}")
        self._models[spec.name] = spec
        self.model_plugin[spec.name] = info.name
        info.models.append(spec.name)

    # --- lookup ----------------------------------------------------------------------------------------------
    @property
    def models(self) -> dict[str, Any]:
        """Registered model specs (loading the model hooks, and TensorFlow, on first access)."""
        with self._lock:
            if "__models__" not in self._models_loaded:
                from .models.device import quiet_tensorflow

                quiet_tensorflow()  # model specs import TensorFlow: keep its start-up noise off the terminal
                self._models_loaded.add("__models__")
                for info in list(self.plugins.values()):
                    if self.pm.has_plugin(info.name):
                        self._call(info, "gradfx_register_models", self._register_model)
            return self._models

    def effect(self, name: str) -> Effect:
        try:
            return self.effects[name]
        except KeyError:
            hidden = ""
            if self.disabled and self.filter is not None:  # the effect may be a left-out plugin's
                hidden = (f"; {ENV_PLUGINS}={self.filter.value!r} leaves out installed plugin(s) "
                          f"{', '.join(sorted(self.disabled))}, which may provide it")
            raise UnknownEffectError(
                f"unknown effect {name!r}{suggest(name, self.effects)}; run 'gradfx list' to see the "
                f"{len(self.effects)} available{hidden}"
            ) from None

    def model(self, name: str) -> Any:
        models = self.models
        try:
            return models[name]
        except KeyError:
            raise UnknownModelError(
                f"unknown model {name!r}{suggest(name, models)}; available: {', '.join(models) or 'none'}"
            ) from None

    def known_model(self, name: str) -> Any:
        """The spec of model ``name`` when it is known without importing TensorFlow (which loading the model
        hooks does): a registered one once they ran, else a built-in one (the built-in plugin's hook runs
        first, so no other plugin can take its names); None otherwise."""
        with self._lock:
            if "__models__" in self._models_loaded:
                return self._models.get(name)
            builtin = self.plugins.get(BUILTIN)
            if builtin is None or not builtin.builtin:
                return None
        return next((spec for spec in BUILTIN_MODELS if spec.name == name), None)

    def failures(self) -> Iterable[PluginInfo]:
        """Plugins with an error: those that failed and those only partly loaded."""
        return (p for p in self.plugins.values() if not p.ok)

    def problems(self) -> list[str]:
        """What went wrong loading plugins, one line each, for front ends to announce ('gradfx plugins'
        shows the details): failed and partly loaded plugins, and GRADFX_PLUGINS names that matched nothing."""
        out = []
        failed = list(self.failures())
        if failed:
            out.append(f"{len(failed)} plugin(s) did not load fully: "
                       + ", ".join(f"{p.name} ({p.describe_status()})" for p in failed))
        out += [f"{ENV_PLUGINS} names {name!r}, which matches no installed plugin or distribution"
                for name in self.unmatched_filter]
        return out


_registry: Registry | None = None
_registry_lock = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry, created on first use."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = Registry()
        return _registry


def get_spec(name_or_spec: str | ModelSpec) -> ModelSpec:
    """The spec for a model name (the process-wide registry's: built-in and installed plugins' models), or the
    spec itself. The engine hands specs around (a plan's steps carry theirs); names are for API callers."""
    if isinstance(name_or_spec, ModelSpec):
        return name_or_spec
    if not isinstance(name_or_spec, str):
        raise UnknownModelError(
            f"a model is named by a string or given as a ModelSpec, not {name_or_spec!r}"
        )
    return get_registry().model(name_or_spec)


def reset_registry(registry: Registry | None = None) -> Registry | None:
    """Replace the process-wide registry (tests); returns the old one."""
    global _registry
    with _registry_lock:
        old, _registry = _registry, registry
    return old
