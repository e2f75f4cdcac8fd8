"""Plan once, run once: every front end turns what the user asked for into one checked :class:`Plan`, and the
engine executes plans (:func:`gradfx.engine.execute.execute`).

    from gradfx.engine.plan import plan
    from gradfx.engine.execute import execute
    p = plan([("deepdream", {"steps": 10})], "photo.jpg", weights="random", seed=1)
    result = execute(p)

``gradfx run``, ``gradfx chain`` (a recipe), ``gradfx demo``, ``gradfx resume``, the TUI and the Python API
(:func:`gradfx.engine.run`, :func:`~gradfx.engine.run_chain`, :func:`~gradfx.engine.run_recipe`) all plan
through :func:`plan`, so each thing a user can get wrong is checked in one place, once per run, before any
compute: the seed, each step's parameters (:func:`prepare`), whether the first step needs an input image
(:func:`check_input`), whether an effect works with the model asked for (:func:`check_model`), the input
image itself, the snapshots folder, every model's name and the weights value for each model
(:func:`gradfx.engine.weights.resolve_weights`, which also decides what ``auto`` becomes), and each step
against its model (:func:`check_spec`: sizes below its smallest input, the layers parameters name; and
:func:`check_input_size`).
Everything up to the model names is TensorFlow-free (:func:`draft`, which also checks sizes against a
built-in model); looking models up imports TensorFlow, because model hooks build Keras objects, and listing
a model's layers builds its network (:func:`complete`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..effect import Effect
from ..errors import GradfxError, ImageError, ParameterError, PluginError
from ..images import atomic
from ..images.arrays import check_longest
from ..images.load import LoadedImage, check_image_file, load_image
from ..modelspecs import check_min_size, check_size
from ..params import Param
from ..registry import Registry, get_registry

if TYPE_CHECKING:
    from ..models.weights import ResolvedWeights
    from ..modelspecs import ModelSpec

#: the largest seed numpy and Keras accept (seeds run from 0 to 2**32 - 1)
MAX_SEED = 2**32 - 1


def check_seed(seed: Any) -> int:
    """``seed`` as an int, or a :class:`ParameterError` when it is not a whole number from 0 to ``MAX_SEED``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ParameterError(f"seed must be a whole number from 0 to {MAX_SEED}, not {seed!r}; "
                             "choose a seed in that range")
    return int(seed)


def prepare(effect: str | Effect, params: Mapping[str, Any] | None = None, *,
            registry: Registry | None = None, base_dir: str | os.PathLike | None = None,
            where: str = "", model: str | None = None) -> tuple[Effect, dict[str, Any]]:
    """Look up an effect and resolve its parameters (defaults -- on ``model``, default the effect's own, where a
    parameter has per-model defaults --, types, ranges, the effect's own cross-checks, files present).

    Every file path a parameter holds (:meth:`Param.map_paths`: image parameters, ``init=file``,
    ``direction(L, 'v.npy')``...) is made relative to ``base_dir`` (a recipe's folder; None: the working
    folder) and must exist. Cheap and TensorFlow-free; :func:`plan` calls it once per step.
    """
    registry = registry or get_registry()
    eff = registry.effect(effect) if isinstance(effect, str) else effect
    resolved = eff.schema.resolve(params or {}, where=where, model=model or eff.model)
    _effect_check(eff.check, eff, registry, where, resolved)
    base = Path(base_dir) if base_dir is not None else None

    def locate(p: Param, value: str) -> str:
        file = Path(value)
        if base is not None and not file.is_absolute():
            file = base / file
        loc = f"{where}: " if where else f"effect {eff.name!r}: "
        if not file.is_file():
            what = f"{value!r} is not one of {', '.join(p.choices)}, and file" if p.choices else (
                "image" if p.is_image else "file")
            raise ParameterError(f"{loc}parameter {p.name!r}: {what} {str(file)!r} does not exist; check the path")
        if p.picks_image:  # a text file, a Git LFS pointer or garbage: found from its header, not at its step
            try:
                check_image_file(file)
            except ImageError as exc:
                raise ImageError(f"{loc}parameter {p.name!r}: {exc}") from None
        return str(file)

    for p in eff.schema:
        resolved[p.name] = p.map_paths(resolved[p.name], lambda value, p=p: locate(p, value))
    return eff, resolved


def _effect_check(check: Any, eff: Effect, registry: Registry, where: str, *args: Any) -> None:
    """Run one of ``eff``'s own checks (:meth:`Effect.check`, :meth:`Effect.check_spec`): its
    ``ParameterError`` gets the step (``where``) or the effect's name before it, any other exception is the
    plugin's failure."""
    try:
        check(*args)
    except ParameterError as exc:
        raise ParameterError(f"{where or f'effect {eff.name!r}'}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a plugin's bug is reported as the plugin's failure
        plugin = registry.effect_plugin.get(eff.name, "?")
        raise PluginError(f"effect {eff.name!r} (plugin {plugin!r}) failed checking its parameters: "
                          f"{type(exc).__name__}: {exc}") from exc


def check_spec(effect: Effect, params: Mapping[str, Any], spec: ModelSpec, *, registry: Registry | None = None,
               where: str = "", layers: bool = True) -> None:
    """The checks of a step against its model, before any compute and without weights: each parameter that
    is a size in pixels the model's smallest input bounds (:attr:`Param.model_min`), TensorFlow-free; then,
    with ``layers``, the effect's :meth:`Effect.check_spec` (the layers its parameters name: it builds the
    network, importing TensorFlow). :func:`draft` makes the first part for the models known without
    TensorFlow (:meth:`Registry.known_model`), :func:`complete` all of it for every step."""
    for p in effect.schema:
        if p.model_min and params.get(p.name) is not None:
            check_min_size(spec.min_size, model=spec.name, param=p.name, value=params[p.name],
                           zero=p.model_min if isinstance(p.model_min, str) else None,
                           where=where or f"effect {effect.name!r}")
    if layers:
        _effect_check(effect.check_spec, effect, registry or get_registry(), where, params, spec)


def check_input(effect: Effect, image: Any, *, where: str = "", fix: str = "") -> None:
    """The one "needs an input image" check: ``effect`` (a chain's first step) transforms an image and none
    was given, or it makes one from nothing and one was given (it would be ignored without a word). ``fix`` is
    how the front end asking gives one (a CLI argument, a recipe's ``input``, ctrl+o)."""
    loc = f"{where}: " if where else ""
    if effect.needs_input and image is None:
        fix = fix or f"pass one (e.g. gradfx run {effect.name} photo.jpg -o out.png)"
        raise ParameterError(f"{loc}effect {effect.name!r} needs an input image; {fix}")
    if not effect.needs_input and image is not None:
        name = f" {os.fspath(image)!r}" if isinstance(image, (str, os.PathLike)) else ""
        raise ParameterError(f"{loc}effect {effect.name!r} makes its image from nothing and takes no input image; "
                             f"leave the input{name} out" + ("" if where else f" (gradfx run {effect.name} -o out.png)"))


def check_input_size(step: PlannedStep, spec: ModelSpec, image: LoadedImage | None) -> None:
    """The input (after ``--size``) of a chain's first step whose effect solves at its input's size
    (:attr:`Effect.at_input_size`) is at least the model's minimum (:func:`~gradfx.engine.modelspecs.check_size`,
    the message the solver would give once the model is built). Errors name the step."""
    if image is None or not step.effect.at_input_size:
        return
    try:
        check_size(spec, *image.rgb.shape[:2])
    except ParameterError as exc:
        raise ParameterError(f"{step.where}: {exc}" if step.where else str(exc)) from None


def check_model(effect: Effect, model: str | None, *, where: str = "", fix: str = "") -> str:
    """The one "works with this model" check: the model a step runs on (``model`` or the effect's default)
    is one the effect allows; returns its name. Model names themselves are checked by :func:`complete`."""
    name = model or effect.model
    if effect.models is not None and name not in effect.models:
        raise ParameterError(f"{where + ': ' if where else ''}effect {effect.name!r} works with models "
                             f"{', '.join(effect.models)}, not {name!r}" + (f"; {fix}" if fix else ""))
    return name


@dataclass
class Step:
    """One step of a chain as a caller gives it: an effect name and its parameters (and optionally its own model/weights)."""

    effect: str
    params: dict[str, Any] = field(default_factory=dict)
    model: str | None = None


@dataclass(frozen=True)
class PlannedStep:
    """One checked step: the effect, its resolved parameters, the model it runs on and the weights that
    model gets. ``spec`` and ``weights`` are None in a :func:`draft` (filled by :func:`complete`); ``weights``
    stays None in a ``check_only`` plan when the weights are a keyword (``auto``/``imagenet`` are located,
    possibly downloaded, only when the plan is meant to run). ``where`` is how errors name the step."""

    effect: Effect
    params: dict[str, Any]
    model: str
    spec: ModelSpec | None = None
    weights: ResolvedWeights | None = None
    where: str = ""
    #: whether the caller named the model (else it is the effect's default, which may follow the weights)
    named: bool = True
    #: the names of the parameters the caller set (the rest are defaults)
    asked: frozenset[str] = frozenset()
    #: a line for the report when the model is not the one asked for (the default model followed the weights)
    note: str | None = None

    def files(self) -> list[str]:
        """Every file the step's parameters name (style images, init=file...): outputs must not go over them."""
        return [path for _, path in self.effect.schema.files(self.params)]


@dataclass(frozen=True)
class Plan:
    """What :func:`gradfx.engine.execute.execute` runs: checked steps, the input image (loaded), the seed,
    the weights as asked (the report's ``requested``), the device and the registry. ``chain`` says whether
    the result is a chain's (a report per step, each step's 8-bit output the next one's input) or one
    effect's. ``snapshots`` is a folder that exists for each step's output; ``files`` lists every file the
    steps' parameters name (outputs must not go over them); ``name`` is a recipe's, for the report."""

    steps: tuple[PlannedStep, ...]
    image: LoadedImage | None
    seed: int
    weights: str
    registry: Registry
    device: str | None = None
    chain: bool = False
    snapshots: Path | None = None
    check_only: bool = False
    files: tuple[str, ...] = field(default=())
    name: str | None = None

    @property
    def notices(self) -> list[str]:
        """What the user must hear before any compute, once each: a step's default model followed the weights
        (its note says it all), else the weights' own fall-back (ImageNet missing, random weights)."""
        lines = [s.note or (s.weights.warning if s.weights is not None else None) for s in self.steps]
        return list(dict.fromkeys(line for line in lines if line))

    @property
    def complete(self) -> bool:
        """Whether every step has its model spec (and, unless ``check_only``, its weights)."""
        return all(s.spec is not None and (self.check_only or s.weights is not None) for s in self.steps)


def _step_where(index: int, effect: str, *, chain: bool, source: str | None) -> str:
    if not chain:
        return ""
    where = f"step {index} ({effect})"
    return f"{source}: {where}" if source else where


def _with_size(effect: Any, params: Mapping[str, Any] | None, max_size: int | None,
               registry: Registry) -> Mapping[str, Any] | None:
    """The one rule for ``--size PX``: it is the longest side of the input and of the output, so an effect
    with a ``size`` parameter of its own (style-transfer's output size, feature-vis's canvas) gets PX unless
    the step sets ``size`` itself. (``--size 256`` gave a 512 px image: style-transfer's default.)"""
    if not max_size or "size" in (params or {}):
        return params
    eff = registry.effects.get(effect) if isinstance(effect, str) else effect
    if eff is None or "size" not in eff.schema or eff.schema["size"].kind != "int":
        return params
    q = eff.schema["size"]
    if q.max is not None and max_size > q.max:  # said of --size, which the user typed, not of `size`
        raise ParameterError(f"--size {max_size}: {eff.name} makes images of at most {int(q.max)} px on a side; "
                             f"use --size {int(q.max)} or less")
    return {**(params or {}), "size": max_size}


def draft(steps: Sequence[Any], image: Any = None, *, model: str | None = None, weights: str | os.PathLike = "auto",
          seed: Any = 0, device: str | None = None, registry: Registry | None = None,
          base_dir: str | os.PathLike | None = None, max_size: int | None = None, chain: bool = True,
          source: str | None = None, name: str | None = None, snapshots: str | os.PathLike | None = None,
          input_fix: str = "", model_fix: str = "", check_only: bool = False) -> Plan:
    """Every TensorFlow-free check of :func:`plan`, in the order a user meets them: the seed, then per step
    the effect, its parameters and its model, the first step's input, the input image, the snapshots folder.

    ``steps`` holds :class:`~gradfx.engine.api.Step`\\ s, ``(effect, params)`` pairs or tables with an
    ``effect`` key; an effect may be a name or an :class:`Effect`. ``model`` is the model of every step that
    names none (else the effect's own). ``chain=False`` plans one effect (errors then name the effect, not
    "step 1"); ``source`` (a recipe's file) prefixes a chain's step names and ``name`` (a recipe's) goes into
    the report. ``input_fix``/``model_fix`` say how the front end fixes a missing input or a model the effect
    refuses. ``max_size`` resizes the input to that longest side and is the ``size`` of every step whose
    effect has such a parameter and does not set it. A ``check_only`` plan (``gradfx chain --check``) cannot run: it needs no input image yet. A :class:`GradfxError` raised
    for a step carries its 1-based index as ``error.step`` (the TUI shows that step's form).
    """
    registry = registry or get_registry()
    seed = check_seed(seed)
    if max_size is not None:
        max_size = check_longest(max_size, "--size")
    norm = [_as_step(s, i) for i, s in enumerate(steps, 1)]
    if not norm:
        raise ParameterError("a chain needs at least one step")
    if not chain and len(norm) != 1:
        raise ParameterError("a single run has exactly one step; run several with run_chain")
    planned = []
    for i, (effect, params, step_model) in enumerate(norm, 1):
        where = _step_where(i, effect if isinstance(effect, str) else effect.name, chain=chain, source=source)
        try:
            params = _with_size(effect, params, max_size, registry)
            try:
                eff, resolved = prepare(effect, params, registry=registry, base_dir=base_dir, where=where,
                                        model=step_model or model)
            except GradfxError as exc:
                if not where or str(exc).startswith(where):
                    raise
                raise type(exc)(f"{where}: {exc}") from None
            if i == 1 and not check_only:
                check_input(eff, image, where=where, fix=input_fix)
            model_name = check_model(eff, step_model or model, where=where, fix=model_fix)
            step = PlannedStep(eff, resolved, model_name, where=where, named=bool(step_model or model),
                               asked=frozenset(params or {}))
            spec = registry.known_model(model_name)
            if spec is not None and not _may_follow(step, weights):  # the layers wait for complete()
                check_spec(eff, resolved, spec, registry=registry, where=where, layers=False)
        except GradfxError as exc:
            exc.step = i  # type: ignore[attr-defined]
            raise
        planned.append(step)
    loaded = None if image is None else load_image(image, max_size=max_size)
    spec = registry.known_model(planned[0].model) if loaded is not None else None
    if spec is not None and not _may_follow(planned[0], weights):  # else complete() checks it
        try:
            check_input_size(planned[0], spec, loaded)
        except GradfxError as exc:
            exc.step = 1  # type: ignore[attr-defined]
            raise
    folder = None if snapshots is None else atomic.output_folder(snapshots, "snapshots folder")
    files = tuple(dict.fromkeys(path for s in planned for path in s.files()))
    return Plan(tuple(planned), loaded, seed, _weights_text(weights), registry, device, chain, folder,
                check_only, files, name)


def complete(p: Plan) -> Plan:
    """``p`` with every step's model spec looked up and the weights each model gets decided (once per model;
    ``auto`` tries a download once). Imports TensorFlow (the model hooks do). Errors name the step."""
    if p.complete:
        return p
    from ..models.weights import resolve_weights

    keyword = isinstance(p.weights, str) and p.weights.strip().lower() in ("auto", "imagenet")
    decided: dict[str, Any] = {}

    def decide(spec: ModelSpec) -> ResolvedWeights:
        if spec.name not in decided:
            decided[spec.name] = resolve_weights(spec, p.weights)
        return decided[spec.name]

    steps = []
    for i, s in enumerate(p.steps, 1):
        try:
            spec = s.spec or p.registry.model(s.model)  # the first call imports TensorFlow quietly
            weights = s.weights
            if weights is None and not (p.check_only and keyword):
                weights = decide(spec)
                if _follows(p, s, weights):
                    s = _on_trained_vgg16(s, spec)
                    spec = p.registry.model(s.model)
                    # the step's note says it all, once: not also the trained VGG16's own fall-back warning
                    weights = replace(decide(spec), warning=None)
        except GradfxError as exc:
            error = type(exc)(f"{s.where}: {exc}") if s.where else exc
            error.step = i  # type: ignore[attr-defined]
            raise error from None

        try:  # the layers its parameters name, on the model it runs on: a chain's every step before any runs
            _check_on(s, spec, p, first=i == 1)
        except GradfxError as exc:
            exc.step = i  # type: ignore[attr-defined]
            # a check-only plan has not decided whether the default model follows the weights: refused only
            # when refused on the trained VGG16 too
            if (weights is not None or not _may_follow(s, p.weights)
                    or not _can_follow(s.effect, s.model, p.registry, p.weights)):
                raise
            vgg16 = _on_trained_vgg16(s, spec)
            try:
                _check_on(vgg16, p.registry.model(vgg16.model), p, first=i == 1)
            except GradfxError:
                raise exc from None
        steps.append(replace(s, spec=spec, weights=weights))
    return replace(p, steps=tuple(steps))


def _check_on(s: PlannedStep, spec: ModelSpec, p: Plan, *, first: bool) -> None:
    """Step ``s``'s checks against ``spec`` (:func:`check_spec`), and the input's size for the ``first``."""
    check_spec(s.effect, s.params, spec, registry=p.registry, where=s.where)
    if first:
        check_input_size(s, spec, p.image)


def _follows(p: Plan, s: PlannedStep, weights: ResolvedWeights) -> bool:
    """Whether step ``s``'s default model follows the weights to the HED-fine-tuned VGG16: :func:`_may_follow`,
    the weights gave the default model random ones, and :func:`_can_follow`."""
    return _may_follow(s, p.weights) and weights.fell_back and _can_follow(s.effect, s.model, p.registry, p.weights)


def _may_follow(s: PlannedStep, weights: str | os.PathLike) -> bool:
    """What says, before TensorFlow loads, that step ``s`` may not run on its model (:func:`_follows`): nobody
    named a model, the weights are ``auto`` and the caller set no parameter that names the default model's
    layers (:attr:`Param.names_layers`)."""
    return (not s.named and _weights_text(weights).strip().lower() == "auto"
            and not any(q.names_layers and q.name in s.asked for q in s.effect.schema))


def _can_follow(eff: Effect, model: str, registry: Registry, weights: str | os.PathLike) -> bool:
    """The weights are ``auto``, the model is not VGG16 already, and the trained VGG16 is installed and
    registered, and ``eff`` works with it."""
    from ..models import trained_vgg16

    vgg16 = trained_vgg16.MODEL
    return (model != vgg16 and _weights_text(weights).strip().lower() == "auto" and vgg16 in registry.models
            and (eff.models is None or vgg16 in eff.models) and trained_vgg16.locate() is not None)


def followed_model(eff: Effect, registry: Registry, weights: str | os.PathLike = "auto") -> str | None:
    """The model a step of ``eff`` that names no model (and no layers) runs on with these ``weights`` on this
    machine when its default model follows the weights to the trained VGG16 (see :func:`complete`), else None.
    For front ends that show the defaults a run will use (the TUI). Looks the default model up (imports
    TensorFlow) and may probe its download site; never downloads."""
    from ..models import trained_vgg16
    from ..models.weights import preview_auto

    if not _can_follow(eff, eff.model, registry, weights):
        return None
    return trained_vgg16.MODEL if preview_auto(registry.model(eff.model)).fell_back else None


def _on_trained_vgg16(s: PlannedStep, default: ModelSpec) -> PlannedStep:
    """Step ``s`` moved from its ``default`` model to VGG16: the parameters the caller left to their defaults
    take VGG16's, and the step's note says so with how to get the default model's own trained weights."""
    from ..models import trained_vgg16
    from ..models.weights import keras_models_dir

    eff, vgg16 = s.effect, trained_vgg16.MODEL
    params = {**s.params, **{q.name: q.coerce(q.default_for(vgg16), s.where) for q in eff.schema
                             if q.model_defaults and q.name not in s.asked}}
    eff.check(params)
    get = (f"for {s.model}, copy {default.imagenet_file} into {keras_models_dir()} or go online once"
           if default.imagenet_file else f"--model {s.model} --weights PATH runs {s.model} on your weights")
    note = (f"{eff.name}: its default model {s.model} has no trained weights here, so it runs on {vgg16} with "
            f"the HED-fine-tuned weights ({trained_vgg16.DISTRIBUTION}; not ImageNet) and {eff.name}'s {vgg16} defaults; {get} (--model {s.model} alone keeps it, on "
            f"random weights)")
    return replace(s, model=vgg16, params=params, note=note)


def plan(steps: Sequence[Any], image: Any = None, **options: Any) -> Plan:
    """Check everything a run needs, once, before any compute: :func:`draft` then :func:`complete`.
    ``check_only=True`` never downloads weights (``gradfx chain --check``)."""
    return complete(draft(steps, image, **options))


def _weights_text(weights: str | os.PathLike) -> str:
    return os.fspath(weights) if isinstance(weights, os.PathLike) else weights


def _as_step(step: Any, index: int) -> tuple[str | Effect, dict[str, Any], str | None]:
    if isinstance(step, Step):
        return step.effect, step.params, step.model
    if isinstance(step, tuple) and len(step) == 2:
        return step[0], dict(step[1]), None
    if isinstance(step, Mapping):
        data = dict(step)
        effect = data.pop("effect", None)
        if not isinstance(effect, (str, Effect)):
            raise ParameterError(f"step {index}: needs an 'effect' name")
        return effect, data, data.pop("model", None)
    raise ParameterError(f"step {index}: expected a Step, a (effect, params) pair or a table, got {step!r}")


__all__ = ["MAX_SEED", "Plan", "PlannedStep", "Step", "check_input", "check_input_size", "check_model", "check_seed", "check_spec", "complete", "draft",
           "plan", "prepare"]
