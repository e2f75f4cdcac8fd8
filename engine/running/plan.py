"""Plan once, run once: every front end turns what the user asked for into one checked :class:`Plan`, and the
engine executes plans (:func:`gradfx.engine.running.execute.execute`).

    from gradfx.engine.running.plan import plan
    from gradfx.engine.running.execute import execute
    result = execute(plan([("deepdream", {"steps": 10})], "photo.jpg", weights="random", seed=1))

``gradfx run``, ``chain``, ``batch``, ``demo``, ``resume``, the TUI and the Python API all plan through
:func:`draft` and :func:`complete`, so each thing a user can get wrong is decided and checked in one place,
once per run, before any compute. Per step, in the order a user meets them:

1. the effect, and the parameters the caller gave, each parsed once into its typed value
   (:meth:`Schema.parse <gradfx.engine.params.Schema.parse>`: layer lists, channel lists, objectives...);
2. the model and the weights it runs on (:func:`gradfx.engine.models.choice.choose`: the one home of that
   decision, which may download ImageNet weights when online); none for an effect that reads no backbone
   (``Effect.model`` None);
3. the other parameters' defaults, on that model, and the effect's own cross-checks (:func:`resolve_params`);
   sizes against the model's smallest input; the weights of the networks the effect runs itself with these
   parameters (:meth:`Effect.networks_for`, :func:`gradfx.engine.models.effect_networks.decide`: fetched
   once when missing and online, a one-line error offline);
4. the input image (loaded once, ``--size`` applied) and its size;
5. (:func:`complete`, which builds the network without weights, once: the build is kept for the run) the
   layers the parameters name, checked against the model once (:meth:`Param.check_layers`), and the
   effect's own checks against its model (:meth:`Effect.check_spec`).
Steps 1-4 import no TensorFlow for the built-in models.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..effect import OPTIONAL, Effect
from ..errors import GradfxError, ImageError, ParameterError, PluginError
from ..images import atomic
from ..images.arrays import check_longest
from ..images.load import LoadedImage, check_image_file, check_longest_side, load_image
from ..models import effect_networks
from ..models.choice import choose, followed_model
from ..modelspecs import check_min_size, check_size
from ..params import Param
from ..registry import Registry, get_registry

if TYPE_CHECKING:
    from ..models.effect_networks import ResolvedNetwork
    from ..models.weights import ResolvedWeights
    from ..modelspecs import ModelSpec

#: the largest seed numpy and Keras accept (seeds run from 0 to 2**32 - 1)
MAX_SEED = 2**32 - 1
#: how the command line fixes a layer its step's model lacks but another model has (``{model}``: that one)
LAYER_FIX = "add --model {model}"


def check_seed(seed: Any) -> int:
    """``seed`` as an int, or a :class:`ParameterError` when it is not a whole number from 0 to ``MAX_SEED``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ParameterError(f"seed must be a whole number from 0 to {MAX_SEED}, not {seed!r}; "
                             "choose a seed in that range")
    return int(seed)


def resolve_params(effect: str | Effect, params: Mapping[str, Any] | None = None, *,
                   registry: Registry | None = None, base_dir: str | os.PathLike | None = None,
                   where: str = "", model: str | None = None) -> tuple[Effect, dict[str, Any]]:
    """Look up an effect and resolve its parameters: the values given (text or typed, each coerced once:
    :meth:`Schema.resolve`) over the defaults on ``model`` (default the effect's own; see
    :meth:`Param.per_model`), the effect's own cross-checks, every file present.

    Every file path a parameter holds (:meth:`Param.map_paths`: image parameters, ``init=file``,
    ``direction(L, 'v.npy')``...) is made relative to ``base_dir`` (a recipe's folder; None: the working
    folder) and must exist. Cheap and TensorFlow-free; :func:`draft` calls it once per step, on the model the
    step runs on.
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


def _effect_check(check: Any, eff: Effect, registry: Registry, where: str, *args: Any) -> Any:
    """Run one of ``eff``'s own checks (:meth:`Effect.check`, :meth:`Effect.check_spec`,
    :meth:`Effect.networks_for`) and return what it returns: its ``ParameterError`` gets the step (``where``)
    or the effect's name before it, any other exception is the plugin's failure."""
    try:
        return check(*args)
    except ParameterError as exc:
        raise ParameterError(f"{where or f'effect {eff.name!r}'}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a plugin's bug is reported as the plugin's failure
        plugin = registry.effect_plugin.get(eff.name, "?")
        raise PluginError(f"effect {eff.name!r} (plugin {plugin!r}) failed checking its parameters: "
                          f"{type(exc).__name__}: {exc}") from exc


def check_sizes(effect: Effect, params: Mapping[str, Any], spec: ModelSpec | None, *, where: str = "") -> None:
    """Each parameter that is a size in pixels the model's smallest input bounds (:attr:`Param.model_min`),
    against ``spec`` (None: the step reads no backbone): TensorFlow-free (the model's ``min_size`` is data)."""
    if spec is None:
        return
    for p in effect.schema:
        if p.model_min and params.get(p.name) is not None:
            check_min_size(spec.min_size, model=spec.name, param=p.name, value=params[p.name],
                           zero=p.model_min if isinstance(p.model_min, str) else None,
                           where=where or f"effect {effect.name!r}")


def check_layers(effect: Effect, params: Mapping[str, Any], spec: ModelSpec | None, *,
                 registry: Registry | None = None, where: str = "", asked: Collection[str] = (),
                 fix: str = LAYER_FIX) -> None:
    """The layers the parameters name, each checked against ``spec``'s model once
    (:meth:`Param.check_layers`), then the effect's own checks against its model (:meth:`Effect.check_spec`).
    Lists the model's layers, which builds its network without weights (kept for the run: one build). Nothing
    to check for a step that reads no backbone (``spec`` None).

    A layer of a parameter the caller set (``asked``) that another registered model has gets the fix to use
    that model, ``fix`` with its name (``-p layers=block4_conv3:1`` on inception_v3: "add --model vgg16")."""
    if spec is None:
        return
    registry = registry or get_registry()
    for p in effect.schema:
        if params.get(p.name) is not None and p.layer_names(params[p.name]):
            try:
                p.check_layers(params[p.name], spec, where or f"effect {effect.name!r}")
            except ParameterError as exc:
                other = _model_with_layers(effect, p, params[p.name], spec, registry) if p.name in asked else None
                if other is None:
                    raise
                raise ParameterError(f"{exc}; {other} has {'them' if len(p.layer_names(params[p.name])) > 1 else 'it'}"
                                     f": {fix.format(model=other)}") from None
    _effect_check(effect.check_spec, effect, registry, where, params, spec)


def _model_with_layers(effect: Effect, p: Param, value: Any, spec: ModelSpec, registry: Registry) -> str | None:
    """Another registered model the effect works with that has every layer ``value`` names (the model the
    effect's default follows the weights to first), or None. Builds each network it tries, without weights:
    only on the way to an error."""
    first = followed_model(effect, registry)
    for name in sorted(registry.models, key=lambda n: n != first):
        if name == spec.name or (effect.models is not None and name not in effect.models):
            continue
        try:
            p.check_layers(value, registry.model(name))
        except Exception:  # noqa: BLE001 - not this one (a layer missing, or a plugin's model that fails)
            continue
        return name
    return None


def check_input(effect: Effect, image: Any, *, where: str = "", fix: str = "", required: bool = True) -> None:
    """The one "needs an input image" check of a chain's first step (:attr:`Effect.needs_input`): it transforms
    an image and none was given (unless not ``required`` yet: ``--check``, a batch's items), or it makes one
    from nothing and one was given (it would be ignored without a word). An effect whose input is
    ``"optional"`` takes one or none. ``fix`` is how the front end asking gives one (a CLI argument, a
    recipe's ``input``, ctrl+o)."""
    loc = f"{where}: " if where else ""
    if effect.needs_input is True and image is None and required:
        fix = fix or f"pass one (e.g. gradfx run {effect.name} photo.jpg -o out.png)"
        raise ParameterError(f"{loc}effect {effect.name!r} needs an input image; {fix}")
    if effect.needs_input is False and image is not None:
        name = f" {os.fspath(image)!r}" if isinstance(image, (str, os.PathLike)) else ""
        raise ParameterError(f"{loc}effect {effect.name!r} makes its image from nothing and takes no input image; "
                             f"leave the input{name} out" + ("" if where else f" (gradfx run {effect.name} -o out.png)"))


def check_chained(effect: Effect, index: int, *, where: str = "") -> str | None:
    """The one rule for a later step of a chain, whose input is the step before's output: an effect that makes
    its image from nothing (``needs_input = False``) would throw that output away without a word, so it is
    refused; one whose input is ``"optional"`` starts from it, and the line returned says so (before any
    compute); one that transforms an image takes it (None)."""
    if effect.needs_input is False:
        raise ParameterError(f"{where + ': ' if where else ''}effect {effect.name!r} makes its image from nothing, "
                             f"so step {index - 1}'s output would be thrown away; make it the first step (or a "
                             "recipe of its own)")
    if effect.needs_input == OPTIONAL:
        return (f"{where or f'step {index}'}: {effect.name} starts from step {index - 1}'s output (as a first "
                "step it makes its image from nothing)")
    return None


def check_input_size(step: PlannedStep, image: LoadedImage | None) -> None:
    """The input (after ``--size``) of a chain's first step whose effect solves at its input's size
    (:attr:`Effect.at_input_size`) is at least its model's minimum (:func:`~gradfx.engine.modelspecs.check_size`,
    the message the solver would give). Errors name the step."""
    if image is None or not step.effect.at_input_size or step.spec is None:
        return
    try:
        check_size(step.spec, *image.rgb.shape[:2])
    except ParameterError as exc:
        raise ParameterError(f"{step.where}: {exc}" if step.where else str(exc)) from None


def check_model(effect: Effect, model: str | None, *, where: str = "", fix: str = "") -> str | None:
    """The one "works with this model" check: the model a step runs on (``model`` or the effect's default)
    is one the effect allows; returns its name (None for an effect that reads no backbone, which refuses a
    model: it would be ignored). Model names themselves are checked when it is looked up."""
    if effect.model is None:
        if model is not None:
            own = f" (it runs {', '.join(effect.networks)})" if effect.networks else ""
            raise ParameterError(f"{where + ': ' if where else ''}effect {effect.name!r} reads no backbone "
                                 f"model{own}, so model {model!r} would be ignored; leave the model out")
        return None
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
    """One checked step: the effect, its resolved parameters (typed), the model it runs on (``spec``) and the
    weights that model gets (:func:`gradfx.engine.models.choice.choose`): all three None for an effect that
    reads no backbone. ``networks``: the weights of the networks the effect runs itself with these
    parameters. ``where`` is how errors name the step; ``asked`` the names of the parameters the caller set
    (the rest are the model's defaults); ``note`` the line said before any compute when the model is not the
    one asked for (the default model followed the weights); ``chained`` the line said when the step starts
    from the step before's output though it could make its image from nothing (:func:`check_chained`)."""

    effect: Effect
    params: dict[str, Any]
    model: str | None
    spec: ModelSpec | None
    weights: ResolvedWeights | None
    where: str = ""
    asked: frozenset[str] = frozenset()
    note: str | None = None
    chained: str | None = None
    networks: tuple[ResolvedNetwork, ...] = ()

    def files(self) -> list[str]:
        """Every file the step's parameters name (style images, init=file...): outputs must not go over them."""
        return [path for _, path in self.effect.schema.files(self.params)]


@dataclass(frozen=True)
class Plan:
    """What :func:`gradfx.engine.running.execute.execute` runs: checked steps, the input image (loaded), the
    seed, the weights as asked (the report's ``requested``), the device and the registry. ``chain`` says
    whether the result is a chain's (a report per step, each step's 8-bit output the next one's input) or one
    effect's. ``snapshots`` is a folder that exists for each step's output; ``files`` lists every file the
    steps' parameters name (outputs must not go over them); ``name`` is a recipe's, for the report.
    ``check_only``: planned to be checked, not run (no input needed, nothing downloaded: ``--check``);
    ``layers_checked``: :func:`complete` has checked the steps against their models; ``layer_fix`` how the
    front end gives a step another model (:func:`check_layers`)."""

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
    layers_checked: bool = False
    layer_fix: str = LAYER_FIX

    @property
    def notices(self) -> list[str]:
        """What the user must hear before any compute, once each: a step's default model followed the weights
        (its note says it all), else the weights' own fall-back (ImageNet missing, random weights); a step
        that starts from the step before's output though it could start from nothing."""
        lines = (line for s in self.steps
                 for line in (s.note or (s.weights.warning if s.weights else None), s.chained) if line)
        return list(dict.fromkeys(lines))


def _step_where(index: int, effect: str, *, chain: bool, source: str | None) -> str:
    if not chain:
        return ""
    where = f"step {index} ({effect})"
    return f"{source}: {where}" if source else where


def _with_size(eff: Effect, params: Mapping[str, Any] | None, longest_side: int | None) -> Mapping[str, Any] | None:
    """The one rule for ``--size PX``: it is the longest side of the input and of the output, so an effect
    with a ``size`` parameter of its own (style-transfer's output size, feature-vis's canvas) gets PX unless
    the step sets ``size`` itself. (``--size 256`` gave a 512 px image: style-transfer's default.)"""
    if not longest_side or "size" in (params or {}):
        return params
    if "size" not in eff.schema or eff.schema["size"].kind != "int":
        return params
    q = eff.schema["size"]
    if q.max is not None and longest_side > q.max:  # said of --size, which the user typed, not of `size`
        raise ParameterError(f"--size {longest_side}: {eff.name} makes images of at most {int(q.max)} px on a side; "
                             f"use --size {int(q.max)} or less")
    return {**(params or {}), "size": longest_side}


def draft(steps: Sequence[Any], image: Any = None, *, model: str | None = None, weights: str | os.PathLike = "auto",
          seed: Any = 0, device: str | None = None, registry: Registry | None = None,
          base_dir: str | os.PathLike | None = None, longest_side: int | None = None, chain: bool = True,
          source: str | None = None, name: str | None = None, snapshots: str | os.PathLike | None = None,
          input_fix: str = "", model_fix: str = "", layer_fix: str = LAYER_FIX, check_only: bool = False,
          image_later: bool = False) -> Plan:
    """Every check of a plan that needs no network build (steps 1-4 of the module docstring), in the order a
    user meets them: the seed and ``--size``, then per step the effect, the parameters given, the model and
    its weights, the other parameters on that model, sizes; then the first step's input and the snapshots
    folder.

    ``steps`` holds :class:`Step`\\ s, ``(effect, params)`` pairs or tables with an ``effect`` key; an effect
    may be a name or an :class:`Effect`. ``model`` is the model of every step that names none (else the
    effect's own, which may follow the weights). ``chain=False`` plans one effect (errors then name the
    effect, not "step 1"); ``source`` (a recipe's file) prefixes a chain's step names and ``name`` (a
    recipe's) goes into the report. ``input_fix``/``model_fix``/``layer_fix`` say how the front end fixes a
    missing input, a model the effect refuses, and a layer another model has (``{model}``: its name).
    ``longest_side`` (``--size``) resizes the input to that longest side and is the ``size`` of every step whose
    effect has such a parameter and does not set it. ``check_only`` (``gradfx
    chain --check``): no input needed and nothing downloaded; ``image_later``: each run gets its own image (a
    batch's items). A :class:`GradfxError` raised for a step carries its 1-based index as ``error.step`` (the
    TUI shows that step's form).
    """
    registry = registry or get_registry()
    seed = check_seed(seed)
    if longest_side is not None:
        longest_side = check_longest(longest_side, "--size")
        if image is not None:
            check_longest_side(image, longest_side)  # before a network is fetched
    norm = [_as_step(s, i) for i, s in enumerate(steps, 1)]
    if not norm:
        raise ParameterError("a chain needs at least one step")
    if not chain and len(norm) != 1:
        raise ParameterError("a single run has exactly one step; run several with run_chain")
    weights = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    decided: dict[str, ResolvedWeights] = {}  # each model's weights, decided once per plan
    networks: dict[str, ResolvedNetwork] = {}  # and each network's an effect runs itself
    planned = []
    for i, (effect, params, step_model) in enumerate(norm, 1):
        where = _step_where(i, effect if isinstance(effect, str) else effect.name, chain=chain, source=source)
        try:
            try:
                eff = registry.effect(effect) if isinstance(effect, str) else effect
                given = eff.schema.parse(_with_size(eff, params, longest_side), where)
                if i == 1:
                    check_input(eff, image, where=where, fix=input_fix, required=not (check_only or image_later))
                chained = check_chained(eff, i, where=where) if i > 1 else None
                # a chain's model is every step's that names none: not one's that reads no backbone
                asked_model = step_model or (None if eff.model is None and chain else model)
                check_model(eff, asked_model, where=where, fix=model_fix)
                choice = None if eff.model is None else choose(
                    eff, registry, model=asked_model, asked=given, weights=weights, fetch=not check_only,
                    decided=decided)
                eff, resolved = resolve_params(eff, given, registry=registry, base_dir=base_dir, where=where,
                                               model=choice and choice.model)
                own = _effect_check(eff.networks_for, eff, registry, where, resolved)
                nets = effect_networks.decide(own, weights, who=where or f"effect {eff.name!r}",
                                              fetch=not check_only, decided=networks)
            except GradfxError as exc:
                if not where or str(exc).startswith(where):
                    raise
                raise type(exc)(f"{where}: {exc}") from None
            check_sizes(eff, resolved, choice and choice.spec, where=where)
        except GradfxError as exc:
            exc.step = i  # type: ignore[attr-defined]
            raise
        planned.append(PlannedStep(eff, resolved, choice and choice.model, choice and choice.spec,
                                   choice and choice.weights, where, frozenset(given), choice and choice.note,
                                   chained=chained, networks=nets))
    if effect_networks.refuses(weights) and all(s.model is None for s in planned):
        raise ParameterError(f"--weights {weights}: no step reads a backbone (the networks "
                             f"{', '.join(n.name for s in planned for n in s.networks)} have their own trained "
                             "weights), so it would be ignored; use --weights auto, or random")
    loaded = None if image is None else load_image(image, longest_side=longest_side)
    try:
        check_input_size(planned[0], loaded)
    except GradfxError as exc:
        exc.step = 1  # type: ignore[attr-defined]
        raise
    folder = None if snapshots is None else atomic.output_folder(snapshots, "snapshots folder")
    files = tuple(dict.fromkeys(path for s in planned for path in s.files()))
    return Plan(tuple(planned), loaded, seed, weights, registry, device, chain, folder, check_only, files, name,
                layer_fix=layer_fix)


def complete(p: Plan) -> Plan:
    """``p`` with every step checked against its model's network (step 5 of the module docstring): the
    layers its parameters name, once, and the effect's own checks. Builds each network once without weights
    (imports TensorFlow); the build is kept for the run. Errors name the step."""
    if p.layers_checked:
        return p
    for i, s in enumerate(p.steps, 1):
        try:
            check_layers(s.effect, s.params, s.spec, registry=p.registry, where=s.where, asked=s.asked,
                         fix=p.layer_fix)
        except GradfxError as exc:
            exc.step = i  # type: ignore[attr-defined]
            raise
    return replace(p, layers_checked=True)


def plan(steps: Sequence[Any], image: Any = None, **options: Any) -> Plan:
    """Check everything a run needs, once, before any compute: :func:`draft` then :func:`complete`.
    ``check_only=True`` never downloads weights (``gradfx chain --check``)."""
    return complete(draft(steps, image, **options))


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


__all__ = ["LAYER_FIX", "MAX_SEED", "Plan", "PlannedStep", "Step", "check_chained", "check_input", "check_input_size",
           "check_layers", "check_model", "check_seed", "check_sizes", "complete", "draft", "plan", "resolve_params"]
