"""Typed effect parameters, declared once.

One ``Param`` per parameter drives validation, ``gradfx show``, ``-p name=value`` parsing on the command line,
TOML recipes and the TUI's forms. Plugin authors use the constructors ``Int``, ``Float``, ``Bool``, ``Str``,
``Choice``, ``Image``, ``Images``, ``Floats``, ``ImageOr`` (a keyword or an image file) and ``Precision`` (the
backbone's compute dtype)::

    PARAMS = (
        Int("steps", 100, "optimisation steps per octave", min=1, max=100_000),
        Choice("normalize", "std", ("std", "mean", "l2"), "gradient normalisation"),
        Image("guide", "optional guide image"),
    )

Every bad value raises :class:`~gradfx.engine.errors.ParameterError` naming the parameter, the value and what
is allowed.

File paths inside values (image parameters, an ``ImageOr`` that is not a keyword, a path a subclass finds in
its text with :meth:`Param.map_paths`) are resolved in one place, ``gradfx.engine.running.plan.resolve_params``: against a
recipe's folder when the values come from a recipe, else the working folder; they must exist before any
compute, and a saved recipe rewrites them for its new folder.

From Python, an image parameter (``Image``, ``Images``, an ``ImageOr``'s file) also takes an image held in
memory: a NumPy array, a PIL image or a :class:`~gradfx.engine.LoadedImage`, converted once, when the value
is parsed, to a ``LoadedImage`` (the value ``build`` gets; ``ctx.image`` takes it as it takes a path). Where
values are recorded as JSON (reports, checkpoints, a batch's settings) it is written as
:func:`~gradfx.engine.images.load.describe` says: ``"<array 64x48 #1a2b3c4d>"``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ParameterError, suggest
from .images.values import NotAnImage, described, image_value, shown
from .scalars import fmt, to_bool, to_float, to_int

#: the weights keywords (--weights, a recipe's weights = ...); any other value is a weights file path
WEIGHT_MODES = ("auto", "imagenet", "hed", "random")

KINDS = ("int", "float", "bool", "str", "choice", "image", "images", "floats")
#: the backbone's compute dtypes (``Problem.precision``, ``Extractor.with_precision``): the one list of them
PRECISIONS = ("float32", "bfloat16")
#: names no effect parameter may have: :func:`gradfx.engine.run`'s own arguments (the engine's seed, model,
#: weights, device...; a step table's ``effect`` and ``model``), so an effect's value and the engine's are never
#: confused; registration refuses them (tests/engine/test_plugin_api.py keeps it equal to run()'s arguments)
RESERVED = ("effect", "image", "params", "model", "weights", "seed", "device", "progress", "cancel", "registry",
            "base_dir", "longest_side", "stage_prefix", "checkpoint", "checkpoint_every", "resume", "checkpoint_info",
            "previous")


@dataclass(frozen=True)
class Param:
    """One declared parameter of an effect."""

    name: str
    kind: str
    default: Any = None
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    required: bool = False
    #: text that may name files (``map_paths`` finds them): for a ``str``, the whole value unless it is one of
    #: ``choices`` (keywords, see :func:`ImageOr`); a subclass may find paths inside its text instead
    files: bool = False
    #: where ``default`` comes from (e.g. "the Keras DeepDream example, on InceptionV3"), for ``gradfx show``
    origin: str = ""
    #: defaults for particular models, ``((model, value, origin), ...)``: see :meth:`per_model`
    model_defaults: tuple[tuple[str, Any, str], ...] = ()
    #: the value names layers of the model (deepdream's ``layers``, feature-vis's ``objective``)
    names_layers: bool = False
    #: the value is a size in pixels that the model's smallest input (``ModelSpec.min_size``) bounds, checked
    #: by the plan before TensorFlow loads (:func:`gradfx.engine.running.plan.check_sizes`); a text allows 0 and says
    #: what 0 means (``"off"``)
    model_min: bool | str = False
    #: when the parameter takes effect, ``((name, (value, ...)), ...)``: see :meth:`only_when`
    applies_when: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"parameter {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"parameter {self.name!r}: a choice needs choices")
        # A declaration whose own default is invalid is a plugin bug: fail at registration, loudly.
        for value in (self.default, *(value for _, value, _ in self.model_defaults)):
            if value is not None:
                self.coerce(value)

    def per_model(self, origin: str = "", *, names_layers: bool = False, **defaults: tuple[Any, str]) -> Param:
        """This parameter with defaults that depend on the run's model, each with its origin.

        ``Float("max_loss", 15.0, "...").per_model("the Keras example, InceptionV3", vgg16=(0.0, "tuned on
        ..."))``: a run on ``vgg16`` that does not set ``max_loss`` gets 0.0, any other model 15.0. ``origin``
        says where the plain default comes from; ``names_layers`` that values name the model's layers (a run
        that sets one keeps the effect's default model: it never follows the weights to another). Values are
        checked like the default; ``gradfx show`` lists them all with their origins.
        """
        pairs = []
        for model, pair in defaults.items():
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], str)):
                raise ValueError(f"parameter {self.name!r}: the default for model {model!r} must be a (value, "
                                 f"origin) pair, not {pair!r}")
            value = pair[0]
            if value is not None:  # checked like the default; text stays as declared (resolving parses it)
                value = value if isinstance(value, str) else self.coerce(value)
                self.coerce(value)
            pairs.append((model, value, pair[1]))
        return replace(self, origin=origin or self.origin, model_defaults=tuple(pairs),
                       names_layers=names_layers or self.names_layers)

    def only_when(self, **conditions: Any) -> Param:
        """This parameter, taking effect only while each named parameter has the given value (or one of a
        tuple of them): ``Float("lr", ...).only_when(optimizer="adam")``; front ends then show it only while
        it :meth:`applies` (docs/plugins.md)."""
        when = tuple((k, tuple(v) if isinstance(v, (tuple, list)) else (v,)) for k, v in conditions.items())
        return replace(self, applies_when=self.applies_when + when)

    def applies(self, values: Mapping[str, Any]) -> bool:
        """Whether it takes effect with ``values`` (coerced); a condition on a name not in them holds."""
        return all(k not in values or values[k] in allowed for k, allowed in self.applies_when)

    def condition(self) -> str:
        """When it applies, as the command line writes it (``optimizer=adam``), or ``""``."""
        return " and ".join(f"{k}={' or '.join(map(fmt, allowed))}" for k, allowed in self.applies_when)

    def default_for(self, model: str | None) -> Any:
        """The default on ``model`` (its own, when :meth:`per_model` names it; else :attr:`default`)."""
        for name, value, _ in self.model_defaults:
            if name == model:
                return value
        return self.default

    def origin_for(self, model: str | None) -> str:
        """Where :meth:`default_for` ``model`` comes from ("" when not said)."""
        for name, _, origin in self.model_defaults:
            if name == model:
                return origin
        return self.origin

    @property
    def is_image(self) -> bool:
        return self.kind in ("image", "images")

    @property
    def picks_image(self) -> bool:
        """Whether a value may be an image file a file picker can choose: images, and a keyword-or-file
        (:func:`ImageOr`) parameter's file."""
        return self.is_image or (self.kind == "str" and self.files and bool(self.choices))

    @property
    def has_paths(self) -> bool:
        """Whether values may hold file paths, which resolve like image paths (see :meth:`map_paths`)."""
        return self.is_image or self.files

    def map_paths(self, value: Any, fn: Callable[[str], str]) -> Any:
        """``value`` with each file path in it replaced by ``fn(path)``; the rest unchanged. ``value`` may be
        coerced or raw (a recipe's list or the command line's comma-separated text). Subclasses whose text
        embeds paths (feature-vis's objective, ``direction(L, 'v.npy')``) override this."""
        if value is None or not self.has_paths:
            return value
        if self.kind == "images":
            if isinstance(value, str):
                return ",".join(fn(v.strip()) for v in value.split(",") if v.strip())
            if not isinstance(value, (list, tuple)):  # one image held in memory (or not yet coerced)
                return value
            return type(value)(fn(os.fspath(v).strip()) if isinstance(v, (str, os.PathLike)) else v
                               for v in value)
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value.strip() or value.strip() in (self.choices or ()):
            return value  # an image held in memory names no file
        return fn(value.strip())

    def allowed(self) -> str:
        """What values are allowed, in words (used in errors, ``gradfx show`` and the TUI)."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices or ())
        if self.kind == "bool":
            return "true or false"
        if self.kind in ("image", "images"):
            return "an image path" if self.kind == "image" else "image paths separated by commas"
        if self.kind == "str" and self.files and self.choices:
            return f"one of {', '.join(self.choices)}, or an image path"
        noun = {"int": "an integer", "float": "a number", "floats": "numbers separated by commas", "str": "text"}[
            self.kind
        ]
        if self.min is not None and self.max is not None:
            noun = f"{noun} from {fmt(self.min)} to {fmt(self.max)}"
        elif self.min is not None:
            noun = f"{noun} >= {fmt(self.min)}"
        elif self.max is not None:
            noun = f"{noun} <= {fmt(self.max)}"
        if self.model_min:  # `gradfx show` says it before a run refuses it
            noun += (f", {'0 or ' if isinstance(self.model_min, str) else ''}at least the model's minimum input "
                     "(gradfx models lists it)")
        return noun

    def brief(self, min_size: int | None = None) -> str:
        """What values are allowed in a few words, for one line of ``gradfx show`` (:meth:`allowed` says it in a
        sentence): ``1 to 20``, ``>= 0``, ``std, mean, l2``, ``content, noise, style or FILE``. ``min_size``: the
        smallest input of the model shown, for a size the model bounds (:attr:`model_min`). A subclass whose
        :meth:`allowed` says more than its kind gives its own (default: that sentence)."""
        if type(self).allowed is not Param.allowed:
            return self.allowed()
        words = {"choice": ", ".join(self.choices or ()), "bool": "true or false", "image": "an image file",
                 "images": "image files, comma-separated",
                 "str": f"{', '.join(self.choices or ())} or FILE" if self.files and self.choices else "text"}
        if self.kind in words:
            return words[self.kind]
        low = max(self.min or 0, min_size) if self.model_min and min_size is not None else self.min
        if self.max is not None:
            text = f"{fmt(low)} to {fmt(self.max)}" if low is not None else f"<= {fmt(self.max)}"
        else:
            text = f">= {fmt(low)}" if low is not None else ("an integer" if self.kind == "int" else "a number")
        if self.model_min:
            text = ("0, or " if isinstance(self.model_min, str) else "") + text + (
                "" if min_size is not None else " (and the model's minimum input)")
        return f"numbers {text}, comma-separated" if self.kind == "floats" else text

    def _fail(self, value: Any, why: str = "", where: str = "") -> ParameterError:
        loc = f"{where}: " if where else ""
        why = f" ({why})" if why else ""
        return ParameterError(f"{loc}parameter {self.name!r}: {shown(value)} is not allowed{why}; "
                              f"expected {self.allowed()}")

    def coerce(self, value: Any, where: str = "") -> Any:
        """Turn a Python value, a TOML value or command-line text into this parameter's type, or raise."""
        if value is None:
            if self.required:
                raise ParameterError(
                    f"{where + ': ' if where else ''}parameter {self.name!r} is required; expected {self.allowed()}"
                )
            return None
        k = self.kind
        try:
            if k == "int":
                out: Any = to_int(value)
            elif k == "float":
                out = to_float(value)
            elif k == "bool":
                out = to_bool(value)
            elif k == "floats":
                items = value.split(",") if isinstance(value, str) else list(value)
                out = tuple(to_float(v) for v in items if not (isinstance(v, str) and not v.strip()))
                if not out:
                    raise ValueError("empty list")
            elif k == "images":
                if isinstance(value, str):
                    items = value.split(",")
                elif isinstance(value, (list, tuple)):
                    items = list(value)
                else:  # one path or one image held in memory
                    items = [value]
                out = tuple(image_value(v, self.name, where) for v in items
                            if not (isinstance(v, str) and not v.strip()))
                if not out:
                    raise ValueError("empty list")
            elif k == "image" or (self.picks_image and not isinstance(value, str)):
                # an ImageOr's keyword is text; its file, or an image in memory, is an image
                out = image_value(value, self.name, where)
            elif k in ("str", "choice"):
                if not isinstance(value, str):
                    raise ValueError("not text")
                out = value.strip()
            else:  # pragma: no cover - guarded in __post_init__
                raise AssertionError(k)
        except NotAnImage:
            loc = f"{where}: " if where else ""
            raise ParameterError(f"{loc}parameter {self.name!r}: {shown(value)} is not an image; pass a path, a "
                                 "NumPy array (height x width x 3) or a PIL image") from None
        except (ValueError, TypeError) as exc:
            raise self._fail(value, str(exc), where) from None
        if k == "choice" and out not in (self.choices or ()):
            raise self._fail(value, "unknown choice" + suggest(out, self.choices or ()), where)
        for number in out if k == "floats" else ((out,) if k in ("int", "float") else ()):
            if self.min is not None and number < self.min or self.max is not None and number > self.max:
                raise self._fail(value, "out of range", where)
        return out

    def layer_names(self, value: Any) -> tuple[str, ...]:
        """The layers of the model a (coerced) value names, which the plan checks against the step's model
        once (:meth:`check_layers`): none, unless the parameter holds layers (:func:`~gradfx.engine.Layers`)."""
        return ()

    def check_layers(self, value: Any, spec: Any, where: str = "") -> None:
        """Whether ``spec``'s model has every layer ``value`` names (:meth:`layer_names`): a
        :class:`ParameterError` naming this parameter, the layer and a close match, else nothing. Called once
        per run by the plan; a parameter with its own way of pointing at the mistake overrides it."""
        try:
            spec.check_layers(self.layer_names(value))
        except ParameterError as exc:
            loc = f"{where}: " if where else ""
            error = ParameterError(f"{loc}parameter {self.name!r}: {exc}")
            error.layer = getattr(exc, "layer", None)  # type: ignore[attr-defined]
            raise error from None

    def to_json(self, value: Any) -> Any:
        """A coerced value as JSON and TOML hold it (a report's, a checkpoint's, a recipe's): lists for
        tuples; a parameter whose value is parsed text (layer lists, objectives) gives the text back; an image
        held in memory is recorded as :func:`~gradfx.engine.images.load.describe` says
        (``"<array 64x48 #1a2b3c4d>"``)."""
        if self.picks_image and value is not None:
            value = described(value)
        return list(value) if isinstance(value, tuple) else value

    def format(self, value: Any) -> str:
        """The command-line text for a value (inverse of :meth:`coerce`; an image held in memory has no
        text, and is shown as :meth:`to_json` records it)."""
        if value is None:
            return ""
        if self.picks_image:
            value = described(value)
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind in ("floats", "images"):
            return ",".join(fmt(v) if isinstance(v, float) else str(v) for v in value)
        if self.kind == "float":
            return fmt(value)
        return str(value)


def Int(name: str, default: int | None, help: str = "", *, min: float | None = None, max: float | None = None,
        required: bool = False, model_min: bool | str = False) -> Param:  # noqa: N802 - constructor-style helper
    """An integer; ``model_min``: a size in pixels the model's smallest input bounds (see :attr:`Param.model_min`)."""
    return Param(name, "int", default, help, min=min, max=max, required=required, model_min=model_min)


def Float(name: str, default: float | None, help: str = "", *, min: float | None = None,
          max: float | None = None, required: bool = False) -> Param:  # noqa: N802
    return Param(name, "float", None if default is None else float(default), help, min=min, max=max,
                 required=required)


def Bool(name: str, default: bool, help: str = "") -> Param:  # noqa: N802
    return Param(name, "bool", default, help)


def Str(name: str, default: str | None, help: str = "", *, required: bool = False) -> Param:  # noqa: N802
    return Param(name, "str", default, help, required=required)


def Choice(name: str, default: str, choices: Sequence[str], help: str = "") -> Param:  # noqa: N802
    return Param(name, "choice", default, help, choices=tuple(choices))


def Precision(help: str = "") -> Param:  # noqa: N802
    """The ``precision`` parameter: the backbone's compute dtype, passed on as ``Problem.precision``."""
    return Choice("precision", "float32", PRECISIONS, help or (
        "the network's compute dtype: bfloat16 is about 1.7x faster per step on CPUs with AVX512-BF16 "
        "(image, losses and optimiser stay float32)"))


def ImageOr(name: str, default: str, keywords: Sequence[str], help: str = "") -> Param:  # noqa: N802
    """One of ``keywords`` or an image file (e.g. ``init``: ``content``, ``noise``, ``style`` or a file); the
    file resolves like an :func:`Image` parameter's (against a recipe's folder) and must exist."""
    return Param(name, "str", default, help, choices=tuple(keywords), files=True)


def Image(name: str, help: str = "", *, required: bool = False) -> Param:  # noqa: N802
    return Param(name, "image", None, help, required=required)


def Images(name: str, help: str = "", *, required: bool = False) -> Param:  # noqa: N802
    return Param(name, "images", None, help, required=required)


def Floats(name: str, default: Sequence[float] | None, help: str = "", *, min: float | None = None,
           max: float | None = None) -> Param:  # noqa: N802
    return Param(name, "floats", None if default is None else tuple(float(v) for v in default), help,
                 min=min, max=max)


@dataclass(frozen=True)
class Schema:
    """The ordered parameters of one effect."""

    params: tuple[Param, ...]
    owner: str = ""
    _by_name: dict[str, Param] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for p in self.params:
            if not isinstance(p, Param):
                raise TypeError(f"{self.owner or 'schema'}: {p!r} is not a Param")
            if p.name in self._by_name:
                raise ValueError(f"{self.owner or 'schema'}: parameter {p.name!r} is declared twice")
            self._by_name[p.name] = p
        for p in self.params:  # only_when names other parameters, with values as they hold them
            for name, allowed in p.applies_when:
                other, where = self._by_name.get(name, p), f"{self.owner or 'schema'}: parameter {p.name!r}"
                if other is p or [other.coerce(v, f"{where}: only_when") for v in allowed] != [*allowed]:
                    raise ValueError(f"{where}: only_when({name}=...) must name another parameter, with "
                                     "values as it holds them")

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Param:
        try:
            return self._by_name[name]
        except KeyError:
            raise self.unknown(name) from None

    def unknown(self, name: str, where: str = "") -> ParameterError:
        loc = where or (f"effect {self.owner!r}" if self.owner else "")
        names = ", ".join(self._by_name) or "none"
        return ParameterError(
            f"{loc + ': ' if loc else ''}unknown parameter {name!r}{suggest(name, self._by_name)}; "
            f"its parameters are: {names}"
        )

    def defaults(self, model: str | None = None) -> dict[str, Any]:
        """Every parameter's default (on ``model``, where a parameter has its own default for it)."""
        return {p.name: p.default_for(model) for p in self.params}

    def resolve(self, values: Mapping[str, Any] | None = None, where: str = "", *,
                model: str | None = None) -> dict[str, Any]:
        """Defaults (on ``model``: see :meth:`Param.per_model`) overlaid with ``values``, each coerced and
        validated. Unknown names are an error."""
        values = dict(values or {})
        where = where or (f"effect {self.owner!r}" if self.owner else "")
        for name in values:
            if name not in self._by_name:
                raise self.unknown(name, where)
        return {p.name: p.coerce(values.get(p.name, p.default_for(model)), where) for p in self.params}

    def parse(self, values: Mapping[str, Any] | None = None, where: str = "") -> dict[str, Any]:
        """The values a caller gave (text, TOML or Python values), each coerced to its parameter's type once;
        no defaults (:meth:`resolve` adds them, on the model the step runs on). Unknown names are an error."""
        where = where or (f"effect {self.owner!r}" if self.owner else "")
        out = {}
        for name, value in (values or {}).items():
            if name not in self._by_name:
                raise self.unknown(name, where)
            out[name] = self._by_name[name].coerce(value, where)
        return out

    def to_json(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Coerced parameters as JSON and TOML hold them (:meth:`Param.to_json`; unknown names as they are)."""
        return {k: self._by_name[k].to_json(v) if k in self._by_name else v for k, v in params.items()}

    def files(self, resolved: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(parameter name, path) for every file path in a parameter set: images, an ``ImageOr``'s file,
        ``direction(..., 'v.npy')`` in an objective (the inputs an output must never overwrite)."""
        found: list[tuple[str, str]] = []
        for p in self.params:
            p.map_paths(resolved.get(p.name), lambda path, name=p.name: found.append((name, path)) or path)
        return found


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """``["steps=10", "layers=a:1,b:2"]`` -> ``{"steps": "10", "layers": "a:1,b:2"}`` (values stay text)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"-p {item!r}: expected NAME=VALUE, e.g. -p steps=50")
        out[name.replace("-", "_")] = value
    return out
