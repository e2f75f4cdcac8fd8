"""Feature visualisation: images that a channel, neuron, layer, direction or class responds to most.

lucid's toolbox on TensorFlow 2 / Keras 3, as one problem for the shared engine: an objective expression
(``mixed4_pre_relu:97``, ``block4_conv1:12 - 0.5*block4_conv1:3``, ``layer(mixed5)``, ``logit(207)``... see
``gradfx.plugins.feature_vis.objective_language``), lucid's image parameterisation (``fft+decorrelated``, ``fft``,
``decorrelated`` or plain ``pixel``), lucid's transformation robustness (``standard``: pad, jitter, scale,
rotate, jitter), L1 / total-variation / blur regularisers, Adam at lr 0.05. A channel range such as
``mixed4_pre_relu:0-15`` optimises one image per channel in one batch, written as a labelled contact sheet and as
separate images; ``thresholds`` keeps the image at chosen steps. Any ReLU layer can be read before its ReLU
as ``LAYER_pre_relu`` (lucid's ``mixed4a_pre_relu``), so a channel dead on the start image still gets a
gradient.

Defaults are lucid's for ImageNet models (512 steps, 128 px, lr 0.05, fft+decorrelated with decay power 1,
standard transforms); the default model is InceptionV3 with objective ``mixed4_pre_relu:97`` (``block4_conv1:12`` on
VGG). VGG16 has its own (88 steps, decay 0.6, no transforms, bfloat16), tuned on the HED-fine-tuned VGG16.

TensorFlow is imported only inside ``run``, so listing effects stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gradfx.engine import Choice, Effect, Float, Floats, Int, Output, Param, ParameterError, Precision, Str
from gradfx.engine.models.device import native_bfloat16

from .grammar import Ref
from .objective_language import ParsedObjective, map_paths, parse_objective

if TYPE_CHECKING:
    from gradfx.engine import ModelSpec, Problem, RunContext

PARAMS = ("fft+decorrelated", "fft", "decorrelated", "pixel")
_LUCID = "lucid's, for ImageNet models"
_TUNED = "tuned by looking, on the HED-fine-tuned VGG16 (block4_conv1:0-15 at 128 px)"
#: steps and fft decay power on VGG16 (tuned on the HED-fine-tuned VGG16, see docs/feature-vis.md)
VGG16_STEPS = 88
#: VGG16's compute dtype: bfloat16 where this CPU computes it natively, else float32 (emulated bfloat16 made the
#: demo's feature-vis 462 s where float32 takes under 100)
VGG16_PRECISION = "bfloat16" if native_bfloat16() else "float32"
VGG16_DECAY = 0.6
_SLUG = re.compile(r"[^A-Za-z0-9_.]+")
_CHANNELS = re.compile(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?")


@dataclass(frozen=True)
class ObjectiveParam(Param):
    """The objective: its text parsed once when parameters resolve (so a typo fails before TensorFlow loads)
    into a :class:`ParsedObjective`, the value the effect reads; the plan checks its layers against the model
    once (:meth:`check_layers`)."""

    def allowed(self) -> str:
        return "an objective expression (grammar: docs/feature-vis.md)"

    def brief(self, min_size: int | None = None) -> str:
        return "an objective, e.g. layer:channel"

    def map_paths(self, value: Any, fn: Any) -> Any:  # direction(L, 'v.npy'): resolved like image paths
        if isinstance(value, ParsedObjective):
            mapped = map_paths(value.text, fn)
            return value if mapped == value.text else parse_objective(mapped)
        return map_paths(value, fn) if isinstance(value, str) else value

    def coerce(self, value: Any, where: str = "") -> Any:
        if isinstance(value, ParsedObjective):
            return value
        out = super().coerce(value, where)
        if not out:
            return None
        try:
            return parse_objective(out)
        except ParameterError as exc:
            raise _objective_error(exc, where) from None

    def format(self, value: Any) -> str:
        return "" if value is None else getattr(value, "text", value)

    def to_json(self, value: Any) -> Any:
        return None if value is None else getattr(value, "text", value)

    def layer_names(self, value: Any) -> tuple[str, ...]:
        return () if value is None else tuple(value.layers)

    def check_layers(self, value: Any, spec: Any, where: str = "") -> None:
        """Each layer the objective names is the model's, the error pointing at it in the text (with a
        classifier top, logit(), the extractor checks on the network with its top: it has more layers)."""
        if value is None or value.needs_top:
            return
        for layer, pos in value.layers.items():
            real, _ = _real_layer(spec, layer)
            try:
                spec.check_layers((real,))
            except ParameterError as exc:
                raise _objective_error(_layer_error(value, pos, real, exc), where) from None


def _objective_error(exc: ParameterError, where: str = "effect 'feature-vis'") -> ParameterError:
    """``WHERE: parameter 'objective': DETAIL`` for any objective mistake, from a typo to an unknown layer, with
    no second ``objective 'TEXT'`` (a positioned error's ``here:`` part shows the text)."""
    return ParameterError(f"{where + ': ' if where else ''}parameter 'objective': {getattr(exc, 'detail', exc)}")


class FeatureVis(Effect):
    name = "feature-vis"
    summary = "Feature visualisation (lucid for Keras 3): an image a channel, neuron, layer or class loves"
    needs_input = False
    model = "inception_v3"
    params = (
        ObjectiveParam("objective", "str", None,
                   "what to maximise: mixed4:97, mixed4:0-15 (one image per channel), neuron(mixed4, 97), "
                   "layer(mixed5), logit(207), '... - 0.5*tv', mixed4_pre_relu:97 (before the ReLU: wakes "
                   "channels that never fire) (docs/feature-vis.md); on another model: its last default "
                   "layer's channel 0", files=True).per_model(
            names_layers=True,
            inception_v3=("mixed4_pre_relu:97", "lucid's practice: a mid-level channel before its ReLU, as "
                                                "lucid's favourite is InceptionV1's mixed4a_pre_relu:476; after "
                                                "the ReLU, 2 of mixed4's first 16 channels never fire on Google's "
                                                "InceptionV3 and stay grey"),
            vgg16=("block4_conv1:12", "a block-4 channel with a clear texture on the HED-fine-tuned VGG16"),
            vgg19=("block4_conv1:12", "VGG16's channel: the same layer names")),
        Choice("param", "fft+decorrelated", PARAMS,
               "image parameterisation: spectral with 1/f decay (fft), decorrelated colour, both, or pixels"),
        Float("decay", 1.0, "the fft parameterisations' decay power: coefficients scaled by 1/f**decay (lucid's "
                            "fft_image decay_power); lower leaves fine detail as easy to reach as coarse",
              min=0.0, max=4.0).per_model(
            _LUCID, vgg16=(VGG16_DECAY, f"{_TUNED}: with lucid's 1 channel 4 comes 6th at 64 to 128 steps; with "
                                        "0.6 every image's own channel is among the layer's 5 strongest at 40-56 "
                                        "and 80-96 steps (seed 0), in finer textures")).only_when(
            param=("fft+decorrelated", "fft")),
        Str("transforms", "standard",
            "standard (pad 12, jitter 8, scale 0.9-1.1, rotate -10..10, jitter 4), none, or a list like "
            "'pad(12), jitter(8), scale(0.95, 1.05), rotate(-5, 0, 5), jitter(4)'").per_model(
            _LUCID, vgg16=("none", f"{_TUNED}: without transforms each image's own channel wins more often "
                                   "(15 of 16 among the 5 strongest against 12) and the textures stay sharp")),
        Int("steps", 512, "optimisation steps", min=1, max=100_000).per_model(
            _LUCID, vgg16=(VGG16_STEPS, f"{_TUNED}: with decay 0.6 all 16 images have their own channel "
                                        "among the 5 strongest and their colours have saturated (at 48 steps "
                                        "too, but muted), in under the Keras filter-visualisation example's "
                                        "time for 16 channels")),
        Str("channels", None,
            "a channel or a range (e.g. 0-7: one image per channel) in place of the objective's own channel: the "
            "objective must be one LAYER:N, so its per-model default can be read as a range on any model"),
        Int("size", 128, "image size in px (square)", min=16, max=4096, model_min=True),
        Float("lr", 0.05, "Adam learning rate", min=1e-6, max=10.0),
        Int("batch", 1, "images optimised together (a channel range such as mixed4:0-15 sets it)", min=1,
            max=1024),
        Floats("thresholds", None, "steps at which to keep a snapshot, e.g. 64,128,256", min=1),
        Float("l1", 0.0, "weight of the L1 penalty (pixels' distance from mid-grey)", min=0.0),
        Float("tv", 0.0, "weight of the total-variation penalty", min=0.0),
        Float("blur", 0.0, "weight of the blur penalty (distance from the 3x3-blurred image)", min=0.0),
        Precision().per_model(
            "float32, the engine's", vgg16=(VGG16_PRECISION, f"{_TUNED}: bfloat16 where the CPU computes it "
                                                              "natively (AMX / AVX512-BF16), 4-5x faster per step "
                                                              "than float32 there with the same textures; float32 "
                                                              "on other CPUs, where bfloat16 is emulated and 4-5x "
                                                              "slower")),
    )

    def check(self, params: Mapping[str, Any]) -> None:
        """Thresholds against steps and channels against the objective need no model: checked at once (and by a
        recipe's --check)."""
        _thresholds(params.get("thresholds"), params["steps"])
        with_channels(params.get("objective"), params.get("channels"))

    # --- building the problem ----------------------------------------------------------------------------
    def build(self, ctx: RunContext, params: Mapping[str, Any]) -> Problem:
        return self._plan(ctx, params)[0]

    def _plan(self, ctx: RunContext, params: Mapping[str, Any]) -> tuple[Problem, ParsedObjective, list[str]]:
        from gradfx.engine import objectives as O  # noqa: N812
        from gradfx.engine.optimise.parameterizations import make_parameterization
        from gradfx.engine.optimise.solver import Problem
        from gradfx.engine.transforms import parse_transforms

        spec = ctx.spec
        size = int(params["size"])  # at least the model's minimum input: the plan checked it (Param.model_min)
        parsed = params.get("objective")  # the model's own default when not given (per-model defaults)
        if parsed is None:
            if not spec.default_layers:
                raise ParameterError(f"effect 'feature-vis': model {ctx.model} has no default objective; give "
                                     f"one, e.g. -p objective=LAYER:0 (`gradfx models {ctx.model}` lists layers)")
            parsed = parse_objective(f"{spec.default_layers[-1]}:0")
        parsed = with_channels(parsed, params.get("channels"))
        steps = int(params["steps"])
        thresholds = _thresholds(params.get("thresholds"), steps)
        transforms = parse_transforms(params["transforms"])
        try:
            batch, objective, virtual = self._objective(ctx, spec, parsed, int(params["batch"]), transforms)
        except ParameterError as exc:
            raise _objective_error(exc) from None
        for name, factory in (("l1", O.l1), ("tv", O.total_variation), ("blur", O.blur)):
            if params[name]:
                objective = objective - float(params[name]) * factory()
        objective = O.with_virtual_layers(objective, virtual)
        param = params["param"]
        if "fft" in param:
            param = make_parameterization(param, decay_power=float(params["decay"]))
        problem = Problem(
            objective=objective, size=(size, size), batch=batch, maximize=True, include_top=parsed.needs_top,
            param=param, transforms=transforms, steps=steps, optimizer="adam", lr=float(params["lr"]),
            snapshot_steps=thresholds, label="feature-vis", precision=params["precision"],
        )
        return problem, parsed, parsed.labels(batch)

    @staticmethod
    def _objective(ctx: RunContext, spec: Any, parsed: ParsedObjective, batch: int,
                   transforms: list) -> tuple[int, Any, list]:
        """The objective's batch, the engine objective (checked against the model) and its virtual pre-ReLU
        layers; appends the resize a classifier top needs to ``transforms``."""
        from gradfx.engine import objectives as O  # noqa: N812
        from gradfx.engine.transforms import resize_to

        batch = _batch_size(parsed, batch)
        top = parsed.needs_top
        channels, virtual = {}, []
        for layer, pos in parsed.layers.items():
            real, pre_relu = _real_layer(spec, layer)
            try:
                ext = ctx.extractor((real,), include_top=top)
            except ParameterError as exc:
                raise _layer_error(parsed, pos, real, exc) from None
            if pre_relu:
                try:
                    virtual.append(O.pre_relu_layer(ext.model, layer))
                except ParameterError as exc:
                    raise parsed.error(pos, f"{exc} @") from None
                channels[layer] = virtual[-1].channels
            else:
                channels[layer] = int(ext.model.get_layer(layer).output.shape[-1])
        logit = None
        if top:
            if not spec.top_size:
                raise parsed.error(0, f"logit() @ needs a classifier top, and model {ctx.model} has none")
            logit = _logit_factory(ctx)
            transforms.append(resize_to((spec.top_size, spec.top_size)))
        return batch, parsed.build(channels, logit=logit), virtual

    # --- running and output --------------------------------------------------------------------------------
    def run(self, ctx: RunContext, params: Mapping[str, Any]) -> Output:
        problem, parsed, labels = self._plan(ctx, params)
        solution = ctx.solve(problem)
        images = _as_batch(solution.image)
        extras: dict[str, np.ndarray | list[np.ndarray]] = {}
        if len(images) > 1:
            for i, (image, label) in enumerate(zip(images, labels, strict=True)):
                extras[_slug(label) if parsed.channel_range else f"{i + 1:02d}"] = image
        taken = [t for t in problem.snapshot_steps if t <= solution.steps]
        for step, snap in zip(taken, solution.snapshots, strict=False):
            snap_images = _as_batch(snap)
            extras[f"step{step:04d}"] = snap_images[0] if len(snap_images) == 1 else contact_sheet(snap_images, labels)
        main = images[0] if len(images) == 1 else contact_sheet(images, labels)
        report = {
            "objective": str(problem.objective),
            "labels": labels,
            "batch": len(images),
            "param": problem.param if isinstance(problem.param, str) else problem.param.name,
            "transforms": [repr(t) for t in problem.transforms],
            "thresholds": taken,
        }
        return Output(main, extras, {"feature_vis": report})


def _real_layer(spec: ModelSpec, layer: str) -> tuple[str, bool]:
    """The network layer an objective's ``layer`` reads, and whether before its ReLU (``LAYER_pre_relu``,
    lucid's ``mixed4a_pre_relu``, for a model without such a layer of its own)."""
    from gradfx.engine.objectives import PRE_RELU

    pre_relu = layer.endswith(PRE_RELU) and layer not in spec.layer_names()
    return (layer[: -len(PRE_RELU)] if pre_relu else layer), pre_relu


def _layer_error(parsed: ParsedObjective, pos: int, real: str, exc: ParameterError) -> ParameterError:
    """The model's unknown-layer error (:meth:`~gradfx.engine.ModelSpec.check_layers`), pointing at ``pos``."""
    return parsed.error(pos, str(exc).replace(f"unknown layer {real!r}", f"unknown layer {real!r} @", 1))


def with_channels(parsed: ParsedObjective | None, channels: str | None) -> ParsedObjective | None:
    """``parsed`` with ``channels`` (``N`` or ``A-B``) in place of its channel: ``mixed4_pre_relu:97`` with
    ``0-7`` is ``mixed4_pre_relu:0-7``. Only a plain ``LAYER:N`` (or ``LAYER:A-B``) objective has a channel to
    replace; None passes (the model's default objective is made later)."""
    if not channels:
        return parsed
    match = _CHANNELS.fullmatch(channels)
    if match is None or (match[2] is not None and int(match[2]) <= int(match[1])):
        raise ParameterError(f"parameter 'channels': {channels!r} is not allowed; expected a channel number or "
                             "a range of them, e.g. 12 or 0-7")
    if parsed is None:
        return None
    if not isinstance(parsed.tree, Ref):
        raise ParameterError(f"parameter 'channels' replaces the channel of an objective LAYER:N, but the "
                             f"objective is {parsed.text!r}; write the channels into the objective and drop "
                             "channels")
    return parse_objective(f"{parsed.tree.layer}:{match[1]}" + (f"-{match[2]}" if match[2] else ""))


def _batch_size(parsed: ParsedObjective, batch: int) -> int:
    if parsed.channel_range is None:
        return batch
    layer, chans, pos = parsed.channel_range
    if batch not in (1, len(chans)):
        raise parsed.error(pos, f"the channel range {layer}:{chans[0]}-{chans[-1]} @ makes a batch of "
                           f"{len(chans)}, but batch={batch} was asked for; drop batch or make them agree")
    return len(chans)


def _thresholds(values: Sequence[float] | None, steps: int) -> tuple[int, ...]:
    if not values:
        return ()
    out = []
    for v in values:
        if not float(v).is_integer() or not 1 <= v <= steps:
            raise ParameterError(f"parameter 'thresholds': {v:g} is not allowed; "
                                 f"expected whole step numbers from 1 to steps ({steps})")
        out.append(int(v))
    return tuple(sorted(set(out)))


def _logit_factory(ctx: RunContext) -> Any:
    """``logit(n)`` for the run's model: the final dense layer's weights applied to its input layer (Keras'
    applications fold the softmax into that ``predictions`` layer; a classifier may also keep it apart)."""
    import keras

    from gradfx.engine import objectives as O  # noqa: N812

    ext = ctx.extractor(("predictions",), include_top=True)
    dense = next((layer for layer in reversed(ext.model.layers) if isinstance(layer, keras.layers.Dense)), None)
    if dense is None:
        raise ParameterError(f"model {ctx.model}: its classifier top has no dense layer to read a logit from")
    kernel = dense.kernel.numpy()
    bias = dense.bias.numpy() if getattr(dense, "bias", None) is not None else None
    history = getattr(dense.input, "_keras_history", None)
    penultimate = history[0].name if history else None
    if penultimate is None:
        raise ParameterError(f"model {ctx.model}: cannot find the layer feeding its 'predictions' layer")

    def logit(n: int) -> Any:
        if not 0 <= n < kernel.shape[1]:
            raise ParameterError(f"logit({n}): model {ctx.model} has classes 0 to {kernel.shape[1] - 1}")
        return O.logit(n, penultimate, kernel, bias)

    return logit


def _as_batch(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.float32)
    return image[None] if image.ndim == 3 else image


def _slug(label: str) -> str:
    return _SLUG.sub("-", label).strip("-") or "image"


def contact_sheet(images: Sequence[np.ndarray] | np.ndarray, labels: Sequence[str], *, gap: int = 2,
                  columns: int | None = None) -> np.ndarray:
    """The images in a grid, each with its label below it (wrapped to the image's width, never cut short), on
    white: H x W x 3."""
    from gradfx.engine.images import sheets

    images = [np.clip(np.asarray(im, np.float32), 0.0, 1.0) for im in images]
    cols = columns or sheets.balanced_columns(len(images))  # 8 images: 4x2, not 3x3 with an empty slot
    return sheets.labelled_sheet(list(zip(labels, images, strict=True)), columns=cols, gap=gap)


EFFECTS = (FeatureVis(),)
