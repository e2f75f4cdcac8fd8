"""DeepDream: amplify what a network's layers see in an image, by gradient ascent.

The effect builds one :class:`~gradfx.engine.Problem` and the engine solves it: octaves with lost-detail
re-injection and ``max_loss`` (the Keras DeepDream example), tiled gradients under a random roll (the
TensorFlow DeepDream tutorial), guided dreams and zoom-feedback frames (Google's original notebook).

Objective: ``sum_l w_l * mean(a_l ** 2)`` over the listed layers (only the chosen ``channels`` when given),
as in the Keras example. With a ``guide`` image each position's features are pulled toward the guide
feature they match best by dot product: ``sum_l w_l * mean_p(a_l[p] . g_l[argmax_q a_l[p] . g_l[q]])``.

TensorFlow is imported only inside ``build``/``run``, so listing effects stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gradfx.engine import (
    Bool,
    Choice,
    Effect,
    Float,
    Image,
    Int,
    Layers,
    Output,
    Param,
    ParameterError,
    Precision,
)
from gradfx.engine.temporal import consistency as temporal

if TYPE_CHECKING:
    from gradfx.engine import Problem, RunContext

#: The Keras DeepDream example's InceptionV3 layers and weights.
DEFAULT_LAYERS = "mixed4:1.0,mixed5:1.5,mixed6:2.0,mixed7:2.5"
_KERAS = "the Keras DeepDream example's, for InceptionV3"
#: VGG's defaults, tuned by looking on the HED-fine-tuned VGG16 (photographs at 256 px, see docs/deepdream.md)
VGG_LAYERS = "block4_conv3:1.0,block5_conv1:1.0"
VGG_STEP_SIZE = 0.002
_TUNED = "tuned by looking, on the HED-fine-tuned VGG16 and photographs at 256 px"
_AS_VGG16 = "VGG16's: the same layer names, and no trained VGG19 here to tune on"
#: temporal_weight's default: on random weights a fifth of the flicker with the dream as strong (docs/video.md)
TEMPORAL_WEIGHT = 1e3
#: temporal_carry's default: on VGG16's defaults the dream holds its strength over the frames (docs/video.md)
TEMPORAL_CARRY = 0.9


@dataclass(frozen=True)
class Channels(Param):
    """A channel list, ``12,40-45``: parsed once when parameters resolve (before TensorFlow loads) into the
    sorted channel indices, ``(12, 40, 41, 42, 43, 44, 45)``, which :meth:`format` writes back as ranges."""

    def allowed(self) -> str:
        return "channel indices or ranges separated by commas (e.g. 12,40-45)"

    def brief(self, min_size: int | None = None) -> str:
        return "channels, e.g. 12,40-45"

    def coerce(self, value: Any, where: str = "") -> Any:
        if value is None or isinstance(value, str):
            value = super().coerce(value, where)
            if not value:
                return None
        try:
            return parse_channels(value)
        except (ValueError, TypeError) as exc:
            raise self._fail(value, str(exc), where) from None

    def to_json(self, value: Any) -> Any:
        return None if value is None else self.format(value)

    def format(self, value: Any) -> str:
        return format_channels(value) if value else ""


def format_channels(channels: Iterable[int]) -> str:
    """``(3, 10, 11, 12)`` -> ``"3,10-12"``: the text :func:`parse_channels` reads back."""
    runs: list[list[int]] = []
    for c in channels:
        if runs and c == runs[-1][-1] + 1:
            runs[-1].append(c)
        else:
            runs.append([c])
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def parse_channels(text: str | Iterable[int]) -> tuple[int, ...]:
    """``"3,10-12"`` -> ``(3, 10, 11, 12)``: channel indices and inclusive ranges, sorted, no repeats (a
    sequence of indices is checked and sorted the same way)."""
    if not isinstance(text, str):
        indices = [int(c) for c in text if not isinstance(c, bool) and int(c) == c and c >= 0]
        if len(indices) != len(list(text)) or not indices:
            raise ValueError("not a list of channel indices")
        return tuple(sorted(set(indices)))
    out: set[int] = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise ValueError("empty item between commas")
        lo, sep, hi = item.partition("-")
        if not lo.strip().isdigit() or (sep and not hi.strip().isdigit()):
            raise ValueError(f"{item!r} is not a channel index or a range like 10-20")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a:
            raise ValueError(f"range {item!r} runs backwards")
        out.update(range(a, b + 1))
    return tuple(sorted(out))


class DeepDream(Effect):
    name = "deepdream"
    summary = "DeepDream: amplify the patterns a network's layers see (octaves, tiles, guide, zoom frames)"
    model = "inception_v3"
    at_input_size = True
    params = (
        Layers("layers", DEFAULT_LAYERS, "layers to amplify with their weights, name:weight,... (a negative weight "
               "damps a layer)", negative=True).per_model(
            _KERAS, names_layers=True, vgg16=(VGG_LAYERS, f"{_TUNED}: eye-like motifs"),
            vgg19=(VGG_LAYERS, _AS_VGG16)),
        Channels("channels", "str", None, "only these channels of the listed layers, e.g. 12,40-45 (default: all)"),
        Int("octaves", 3, "number of scales, coarse to fine", min=1, max=20),
        Float("octave_scale", 1.4, "size ratio between octaves", min=1.01, max=4.0),
        Int("steps", 20, "gradient-ascent steps per octave", min=1, max=10_000),
        Float("step_size", 0.01, "step size on the normalised gradient (image in [0, 1])", min=1e-6,
              max=10.0).per_model(_KERAS, vgg16=(VGG_STEP_SIZE, f"{_TUNED}: at 0.01 the photo drowns in motifs, at "
                                                                 "0.002 it stays recognisable"),
                                  vgg19=(VGG_STEP_SIZE, _AS_VGG16)),
        Choice("normalize", "mean", ("std", "mean", "l2"),
               "gradient normalisation: mean absolute value (Keras example), std (TF tutorial) or L2 norm"),
        Float("max_loss", 15.0, "stop an octave early once the objective passes this (0: never)",
              min=0.0).per_model(_KERAS, vgg16=(0.0, "never: VGG's objective passes 15 at the first step, so "
                                                     "the example's figure would stop every octave after 1 step"),
                                 vgg19=(0.0, _AS_VGG16),
                                 inception_v3=(20.0, "the Keras example's 15, raised: on Google's 2015 InceptionV3 "
                                                     "(the package index's; Keras' own file is not to be had "
                                                     "offline) 15 ended the last octave 4-5 steps early on 2 of 3 "
                                                     "photographs at 256 px; at 20 every step runs")),
        Int("jitter", 0, "random shift of up to this many pixels each step", min=0, max=512),
        Int("tile", 512, "compute gradients in tiles of at most this many pixels, under a random roll "
            "(0: whole image); bounds memory at any size", min=0, max=8192, model_min="the whole image"),
        Bool("reinject_detail", True, "re-inject the detail lost by downscaling between octaves"),
        Image("guide", "guide image: pull each position's features toward its best-matching guide feature"),
        Int("frames", 1, "number of zoom-feedback frames (>1 writes numbered frames and an animation)",
            min=1, max=10_000),
        Float("zoom", 1.05, "zoom factor between frames (crop the centre, resize back, dream again)",
              min=1.0, max=4.0),
        Precision(),
        *temporal.params(TEMPORAL_WEIGHT, "weight of the temporal loss, subtracted from the dream objective: "
                         "the mean squared distance to the warped previous output where the flow is reliable, "
                         "times the objective's value there (so the weight means the same for any model)"),
        Float("temporal_carry", TEMPORAL_CARRY, "with temporal=flow, the share of the previous frame's dream (its "
              "difference from its input) a frame starts from and is held to: at 1 the dream grows with every "
              "frame", min=0.0, max=1.0).only_when(temporal="flow"),
    )

    # --- checks (before any compute) -------------------------------------------------------------------------
    def check(self, params: Mapping[str, Any]) -> None:
        if params["temporal"] != "flow":
            return
        if params["frames"] > 1:
            raise ParameterError("parameter 'temporal': flow works over the frames of a video, not with zoom "
                                 "frames; use frames=1, or temporal=none")
        if params["jitter"]:
            raise ParameterError("parameter 'jitter': temporal=flow compares the image with the warped previous "
                                 "frame pixel for pixel, which a jittered image is not; use jitter=0")

    # --- problem ---------------------------------------------------------------------------------------------
    def build(self, ctx: RunContext, params: Mapping[str, Any], init: np.ndarray | None = None) -> Problem:
        from gradfx.engine import Problem

        layers = params["layers"]  # a LayerList, its layers checked against the model by the plan
        extractor = ctx.extractor(tuple(sorted(layers.names)))  # the same (cached) extractor the engine builds
        channels = self._channels(extractor, params)
        image = ctx.input.rgb if init is None else init
        guide = ctx.image(params["guide"]).rgb if params.get("guide") else None
        objective = _objective(layers, channels, guide, tile=params["tile"])
        jitter = params["jitter"]
        steps, aligned = params["steps"], {}
        # a video frame after the first: the previous dream, warped, where the flow is reliable; the new frame
        # where it is not (disoccluded, entering the picture); then keep near the warped dream. Only part of
        # the previous dream is carried over (start and temporal target): each frame dreams on, so carrying
        # all of it makes the dream grow with every frame
        frame = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else np.asarray(image, np.float32)
        follow = temporal.follow(ctx, params, frame, frame, carry=params["temporal_carry"])
        if follow is not None:
            image, aligned, steps = follow.init, follow.aligned, follow.steps
            objective = follow.hold(objective, params["temporal_weight"], maximize=True)
        return Problem(
            objective=objective,
            init=image,
            maximize=True,
            aligned=aligned,
            steps=steps,
            octaves=params["octaves"],
            octave_scale=params["octave_scale"],
            reinject_detail=params["reinject_detail"],
            optimizer="sgd",
            lr=params["step_size"],
            normalize=params["normalize"],
            max_loss=params["max_loss"] or None,
            tile=params["tile"],
            transforms=(_jitter(jitter),) if jitter else (),
            label="octave",
            precision=params["precision"],
        )

    def run(self, ctx: RunContext, params: Mapping[str, Any]) -> Output:
        """One dream, or with ``frames`` > 1 a zoom-feedback sequence: each frame zooms into the last and
        dreams again (one problem per frame, solved by the engine)."""
        n = params["frames"]
        frames: list[np.ndarray] = []
        image = ctx.input.rgb
        if params["tile"] and max(image.shape[:2]) > params["tile"]:
            # A tiled (large) canvas: hold an 8-bit input as 8 bits, a quarter of the memory (at 4096 px,
            # 50 MB instead of 200 MB); the engine converts it to the same floats (k / 255) where it needs them.
            eight = _eight_bit(image)
            if eight is not None:
                ctx.input.rgb = image = eight
        objective = ""
        for i in range(n):
            if i:
                image = zoom(image, params["zoom"])
            problem = self.build(ctx, params, init=image)
            objective = str(problem.objective)
            image = ctx.solve(problem, stage_prefix=f"frame {i + 1}/{n} · " if n > 1 else "").image
            frames.append(image)
            if ctx.cancelled:
                break
        if n == 1:
            return Output(image=image, report={"objective": objective})
        return Output(image=frames[-1], extras={"frames": frames},
                      report={"objective": objective, "frames": len(frames)})

    # --- validation helpers ----------------------------------------------------------------------------------
    @staticmethod
    def _channels(extractor: Any, params: Mapping[str, Any]) -> tuple[int, ...] | None:
        if not params.get("channels"):
            return None
        channels = params["channels"]
        for name in extractor.layers:
            depth = int(extractor.model.get_layer(name).output.shape[-1])
            if channels[-1] >= depth:
                raise ParameterError(
                    f"effect 'deepdream': parameter 'channels': {format_channels(channels)!r} is not allowed (layer "
                    f"{name!r} has {depth} channels); expected channel indices from 0 to {depth - 1}"
                )
        return channels


def _eight_bit(rgb: np.ndarray) -> np.ndarray | None:
    """``rgb`` (float32 in [0, 1]) as uint8 when every value is exactly ``k / 255`` (an 8-bit file), else None.

    Checked and converted band by band, so no full-size float temporary is made."""
    if rgb.dtype != np.float32:
        return None
    out = np.empty(rgb.shape, np.uint8)
    for y0 in range(0, rgb.shape[0], 256):
        rows = rgb[y0 : y0 + 256]
        q = np.rint(rows * 255.0)
        if not np.all((q >= 0) & (q <= 255)):
            return None
        out[y0 : y0 + 256] = q
        if not np.array_equal(out[y0 : y0 + 256].astype(np.float32) / 255.0, rows):
            return None
    return out


def zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """Crop the centre ``1/factor`` of ``image`` (H, W, 3) and resize it back to (H, W)."""
    import tensorflow as tf

    h, w = image.shape[:2]
    ch, cw = max(1, round(h / factor)), max(1, round(w / factor))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    crop = tf.convert_to_tensor(image[None, y0 : y0 + ch, x0 : x0 + cw], tf.float32)
    out = tf.image.resize(crop, (h, w), method="bicubic")
    return np.clip(out[0].numpy(), 0.0, 1.0)


def _jitter(pixels: int) -> Any:
    """A transform rolling the batch by a random shift in [-pixels, pixels] on each axis (stateless)."""
    import tensorflow as tf

    def jitter(images: Any, seed: Any) -> Any:
        seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 0x6A17)
        shift = tf.random.stateless_uniform([2], seed=seed, minval=-pixels, maxval=pixels + 1, dtype=tf.int32)
        return tf.roll(images, shift, axis=(1, 2))

    return jitter


def _objective(layers: tuple[tuple[str, float], ...], channels: tuple[int, ...] | None,
               guide: np.ndarray | None, *, tile: int) -> Any:
    """The weighted layer objective, or its guided form when ``guide`` is given."""
    import tensorflow as tf

    from gradfx.engine import Objective

    def select(t: Any) -> Any:
        return t if channels is None else tf.gather(t, list(channels), axis=-1)

    what = "" if channels is None else f"[{_ranges(channels)}]"
    canvas = {"area": None}

    def share(c: Any) -> Any:
        # The engine sums the objective over tiles; weighting each tile's mean by its share of the canvas
        # makes the sum the canvas mean, so tiled and whole-image runs report (and stop at) the same values.
        if canvas["area"] is None:
            return 1.0
        shape = tf.shape(c.image)  # dynamic: tiles may be traced with relaxed shapes
        return tf.cast(shape[1] * shape[2], tf.float32) / canvas["area"]

    def set_canvas(ctx: Any) -> None:
        canvas["area"] = float(ctx.size[0] * ctx.size[1])

    if guide is None:
        def fn(f: Any, c: Any) -> Any:
            total = tf.add_n([w * tf.reduce_mean(tf.square(select(f[name]))) for name, w in layers])
            return share(c) * total

        desc = " + ".join(f"{w:g} * mean_square({name}{what})" for name, w in layers)
        return Objective(fn, desc, {name for name, _ in layers}, bind=set_canvas)

    targets: dict[str, Any] = {}

    def bind(ctx: Any) -> None:
        set_canvas(ctx)
        # The guide, in its own proportions, at the stage's scale but never larger than a tile: its features
        # stay small whatever the canvas size (the dot-product matrix is tile positions x guide positions).
        # Its short side never drops below what the stage itself feeds the network.
        h, w = ctx.size
        gh, gw = guide.shape[:2]
        longest = min(max(h, w), tile or max(h, w))
        s = max(longest / max(gh, gw), min(h, w, longest) / min(gh, gw))
        size = (max(1, round(gh * s)), max(1, round(gw * s)))
        g = tf.image.resize(tf.convert_to_tensor(guide[None], tf.float32), size, method="bicubic", antialias=True)
        feats = ctx.features(tf.clip_by_value(g, 0.0, 1.0))
        for name, _ in layers:
            t = select(feats[name])
            targets[name] = tf.stop_gradient(tf.reshape(t, (-1, t.shape[-1])))

    def guided(f: Any, c: Any) -> Any:
        total = []
        for name, w in layers:
            x = select(f[name])
            x = tf.reshape(x, (-1, x.shape[-1]))
            y = targets[name]
            best = tf.gather(y, tf.argmax(tf.matmul(x, y, transpose_b=True), axis=1))
            total.append(w * tf.reduce_mean(tf.reduce_sum(x * best, axis=-1)))
        return share(c) * tf.add_n(total)

    desc = " + ".join(f"{w:g} * guide_match({name}{what})" for name, w in layers)
    return Objective(guided, desc, {name for name, _ in layers}, bind=bind)


def _ranges(channels: tuple[int, ...]) -> str:
    parts, start = [], channels[0]
    for prev, cur in zip(channels, (*channels[1:], None), strict=True):
        if cur is None or cur != prev + 1:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = cur
    return ",".join(parts)


EFFECTS = (DeepDream(),)
