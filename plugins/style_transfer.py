"""The built-in ``style-transfer`` effect: Gatys et al.'s neural style transfer as one engine problem.

The effect owns no loop. :meth:`StyleTransfer.build` turns the parameters into a :class:`Problem` whose
objective is ``content_weight * content + style_weight * style + tv_weight * tv``; the engine's solver runs
the scales (``sizes``), the tiles, Adam or L-BFGS-B and the straight-through quantisation. Colour
preservation is a pre-step (``histogram``: the styles' colours are matched to the content's in ``build``)
or a post-step (``luminance``: the transfer runs on luminance only and ``finish`` puts the content's chroma
back).

Losses (each term is comparable across image sizes, scales and tiles; see docs/style-transfer.md):

- content: ``mean((F - P)^2)`` per content layer, where ``P`` are the features of the content image;
- style: ``mean((G - G*)^2)`` per style layer, with Gram matrices divided by the number of positions
  (``gram_matrix``: the TensorFlow tutorial's normalisation) so a target computed on a style image of any
  size, or a tile's Gram, compares with the whole canvas's;
- tv: the tutorial's ``tf.image.total_variation`` (a sum of absolute neighbour differences) times
  ``512 / sqrt(H * W)``: at 512 x 512 it is the tutorial's, and since the sum over a picture's edges grows
  with its side length, not its area, the term keeps its balance with the (size-independent) content and
  style terms at other sizes; being a sum, it adds up exactly over tiles.

TensorFlow is imported only inside ``build``/``finish``, so listing effects stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gradfx.engine import (
    Choice,
    Effect,
    Float,
    Floats,
    ImageOr,
    Images,
    Int,
    Layers,
    Output,
    ParameterError,
    Precision,
    RunContext,
)
from gradfx.engine.temporal import consistency as temporal
from gradfx.engine.temporal import flow

if TYPE_CHECKING:
    from gradfx.engine.optimise.solver import Problem, Solution

DEFAULT_CONTENT_LAYERS = "block5_conv2"
DEFAULT_STYLE_LAYERS = "block1_conv1,block2_conv1,block3_conv1,block4_conv1,block5_conv1"
#: the side of the canvas the tutorial's total-variation weight was tuned on (its images' longest side)
TV_REFERENCE_SIDE = 512
INIT_CHOICES = ("content", "noise", "style")
#: temporal_weight's default with the tutorial's loss weights, and VGG16's with its own (bench/RESULTS-video.md)
TEMPORAL_WEIGHT, VGG_TEMPORAL_WEIGHT = 1e4, 1e2
#: the aligned image of a video frame's pixels that entered the picture (1) and the weight, relative to
#: style_weight, of their own style term (docs/video.md, "The fading, found and fixed")
ENTERING, ENTERING_WEIGHT = "temporal_entering", 0.5
_TUTORIAL = "the TensorFlow style-transfer tutorial's, for VGG19"
_TUNED = "tuned by looking, on the HED-fine-tuned VGG16 (a photograph and a painting, 256 px)"

# RGB <-> YIQ (NTSC). Y is the luminance; I and Q carry the chroma that `preserve_colors=luminance` keeps.
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], np.float64
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


# ----------------------------------------------------------------------------------------- colour helpers
def rgb_to_yiq(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, np.float64) @ _RGB_TO_YIQ.T


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    return np.asarray(yiq, np.float64) @ _YIQ_TO_RGB.T


def luminance(rgb: np.ndarray) -> np.ndarray:
    """The Y channel (H x W) of an RGB image."""
    return rgb_to_yiq(rgb)[..., 0]


def match_luminance(style_y: np.ndarray, content_y: np.ndarray) -> np.ndarray:
    """Shift and scale a style's luminance to the content's mean and standard deviation (Gatys et al. 2016,
    "Preserving Color in Neural Artistic Style Transfer", luminance-only transfer)."""
    s_mean, s_std = float(style_y.mean()), float(style_y.std())
    c_mean, c_std = float(content_y.mean()), float(content_y.std())
    return (style_y - s_mean) * (c_std / max(s_std, 1e-6)) + c_mean


def match_color_histogram(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Recolour ``style`` so its RGB mean and covariance equal ``content``'s (the colour-histogram matching
    of Gatys et al. 2016, with the symmetric "Image Analogies" transform ``A = Cc^1/2 Cs^-1/2``)."""

    def stats(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        px = np.asarray(img, np.float64).reshape(-1, 3)
        return px.mean(0), np.cov(px, rowvar=False) + 1e-5 * np.eye(3)

    def sqrtm(c: np.ndarray, power: float) -> np.ndarray:
        vals, vecs = np.linalg.eigh(c)
        return (vecs * np.maximum(vals, 1e-8) ** power) @ vecs.T

    mu_s, cov_s = stats(style)
    mu_c, cov_c = stats(content)
    a = sqrtm(cov_c, 0.5) @ sqrtm(cov_s, -0.5)
    out = (np.asarray(style, np.float64).reshape(-1, 3) - mu_s) @ a.T + mu_c
    return np.clip(out.reshape(style.shape), 0.0, 1.0).astype(np.float32)


def grey3(y: np.ndarray) -> np.ndarray:
    """A luminance plane as a 3-channel image in [0, 1]."""
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)


def restore_chroma(image: np.ndarray, content: np.ndarray) -> np.ndarray:
    """``image``'s luminance with ``content``'s chroma (YIQ I and Q), clipped to [0, 1]."""
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = luminance(image)
    return np.clip(yiq_to_rgb(yiq), 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------- parameter helpers
def fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` resized to exactly ``size`` (height, width), antialiased bicubic, clipped to [0, 1]."""
    import tensorflow as tf

    from gradfx.engine.optimise import schedule

    if img.shape[:2] == tuple(size):
        return img
    out = schedule.resize(tf.constant(img[None], tf.float32), tuple(size)).numpy()[0]
    return np.clip(out, 0.0, 1.0)


def _stage_sizes(final: tuple[int, int], scales: int, min_size: int) -> list[tuple[int, int]]:
    """Coarse-to-fine canvas sizes, a factor of 2 apart, never below the model's minimum."""
    from gradfx.engine.optimise import schedule

    return schedule.octave_sizes(final, scales, 2.0, min_size)


# ----------------------------------------------------------------------------------------------- losses
class _Terms:
    """The three loss terms of one run; they share the canvas size the engine binds per stage."""

    def __init__(self, *, content_layers: Mapping[str, float], style_layers: Mapping[str, float],
                 styles: Sequence[np.ndarray], blend: Sequence[float], masked: bool, style_scale: float,
                 min_size: int) -> None:
        self.content_layers = dict(content_layers)
        self.style_layers = dict(style_layers)
        self.styles = list(styles)
        self.blend = list(blend)
        self.masked = masked
        self.style_scale = style_scale
        self.min_size = min_size
        self.canvas: tuple[int, int] = (1, 1)
        self.extract: Any = None
        self.content_target: dict[str, Any] | None = None
        self.style_targets: list[dict[str, Any]] = []

    # --- per stage ------------------------------------------------------------------------------------
    def bind_canvas(self, ctx: Any) -> None:
        self.canvas = tuple(ctx.size)
        self.extract = ctx.features

    def bind_content(self, ctx: Any) -> None:
        import tensorflow as tf

        self.bind_canvas(ctx)
        # ctx.tile, not the parameter: the engine may retry a run with smaller tiles after running out of memory
        if ctx.tile:  # each tile reads its own crop of the aligned content image, rolled with the canvas
            self.content_target = None
        else:
            feats = ctx.features(ctx.aligned["content"])
            self.content_target = {k: tf.stop_gradient(feats[k]) for k in self.content_layers}

    def bind_style(self, ctx: Any) -> None:
        import tensorflow as tf

        from gradfx.engine.optimise import schedule

        self.bind_canvas(ctx)
        longest = max(1, round(self.style_scale * max(ctx.size)))
        targets = []
        for style in self.styles:
            h, w = style.shape[:2]
            k = longest / max(h, w)
            k = max(k, self.min_size / min(h, w))  # never below the model's minimum input
            size = (max(self.min_size, round(h * k)), max(self.min_size, round(w * k)))
            image = schedule.resize(tf.constant(style[None]), size)
            layers = tuple(self.style_layers)
            targets.append(_global_grams(ctx.features, image, layers, ctx.tile, self.min_size))
        if not self.masked:  # one blended target: sum_s b_s |G - G_s|^2 = |G - sum_s b_s G_s|^2 + const
            total = sum(self.blend)
            blended = {k: sum(b / total * t[k] for b, t in zip(self.blend, targets, strict=True))
                       for k in self.style_layers}
            targets = [blended]
        self.style_targets = [{k: tf.stop_gradient(v) for k, v in t.items()} for t in targets]

    # --- per step -------------------------------------------------------------------------------------
    def area_fraction(self, image: Any) -> Any:
        """The share of the canvas this step's image covers (1 untiled): tile losses are area-weighted so
        their sum over the tiles of the canvas is comparable with the whole-image loss. Dynamic shapes:
        the solver may trace tiles with relaxed shapes."""
        import tensorflow as tf

        shape = tf.shape(image)
        return tf.cast(shape[1] * shape[2], tf.float32) / float(self.canvas[0] * self.canvas[1])

    def content(self, f: Mapping[str, Any], c: Any) -> Any:
        import tensorflow as tf

        target = self.content_target
        if target is None:
            feats = self.extract(c.aligned["content"])
            target = {k: tf.stop_gradient(feats[k]) for k in self.content_layers}
        total = sum(self.content_layers.values())
        loss = tf.add_n([w / total * tf.reduce_mean(tf.square(f[k] - target[k]))
                         for k, w in self.content_layers.items() if w > 0])
        return loss * self.area_fraction(c.image)

    def style(self, f: Mapping[str, Any], c: Any) -> Any:
        return self._style(f, c)

    def entering(self, f: Mapping[str, Any], c: Any) -> Any:
        """The style loss of the pixels that entered the picture with this video frame, on their own (the
        aligned image :data:`ENTERING`; see :meth:`StyleTransfer.build`). Reads the targets the style term
        bound."""
        return self._style(f, c, region=ENTERING)

    def _style(self, f: Mapping[str, Any], c: Any, region: str = "") -> Any:
        """Over the style layers, the mean squared difference of the Gram matrices to the targets. A region
        (a masked style's mask, times the aligned image ``region`` if given) has its own Gram, the mean outer
        product over its positions, and its term is weighted by its share of the canvas, so each of its
        pixels is pushed as hard as in a whole-canvas term."""
        import tensorflow as tf

        from gradfx.engine.objectives import gram_matrix

        total = sum(self.style_layers.values())
        blend = self.blend if self.masked else [1.0]
        terms = []
        for k, w in self.style_layers.items():
            if w <= 0:
                continue
            feats = f[k]
            if not (self.masked or region):
                diff = gram_matrix(feats) - self.style_targets[0][k]
                terms.append(w / total * tf.reduce_mean(tf.square(diff)))
                continue
            size = tf.shape(feats)[1:3]

            def at_layer(name: str, size: Any = size) -> Any:  # an aligned mask at this layer's resolution
                return tf.clip_by_value(tf.image.resize(c.aligned[name], size, method="area"), 0.0, 1.0)

            for s, (b, target) in enumerate(zip(blend, self.style_targets, strict=True)):
                m = at_layer(f"mask{s}") if self.masked else 1.0
                if region:
                    m = m * at_layer(region)
                gram = tf.einsum("bijc,bijd->bcd", feats * m, feats) / (tf.reduce_sum(m) + 1e-6)
                terms.append(b * w / total * tf.reduce_mean(m) * tf.reduce_mean(tf.square(gram - target[k])))
        return tf.add_n(terms) * self.area_fraction(c.image)

    def tv(self, f: Mapping[str, Any], c: Any) -> Any:
        import tensorflow as tf

        x = c.image
        total = tf.reduce_sum(tf.abs(x[:, 1:] - x[:, :-1])) + tf.reduce_sum(
            tf.abs(x[:, :, 1:] - x[:, :, :-1]))
        return total * (TV_REFERENCE_SIDE / math.sqrt(self.canvas[0] * self.canvas[1]))


def _global_grams(extract: Any, image: Any, layers: tuple[str, ...], tile: int,
                  min_size: int) -> dict[str, Any]:
    """Gram matrices of the whole ``image``, divided by its number of positions. With ``tile`` the sum of
    outer products is accumulated tile by tile (a Gram is a sum over positions), so memory stays bounded."""
    import tensorflow as tf

    from gradfx.engine.optimise import schedule

    h, w = int(image.shape[1]), int(image.shape[2])
    sums: dict[str, Any] = {}
    counts = dict.fromkeys(layers, 0)
    step = max(tile, 2 * min_size) if tile else 0  # larger pieces: fewer border effects in the target
    for y0, y1, x0, x1 in schedule.tiles((h, w), step, min_size):
        feats = extract(image[:, y0:y1, x0:x1])
        for k in layers:
            fk = feats[k]
            g = tf.einsum("bijc,bijd->bcd", fk, fk)
            sums[k] = g if k not in sums else sums[k] + g
            counts[k] += int(fk.shape[1]) * int(fk.shape[2])
    return {k: sums[k] / float(counts[k]) for k in layers}


# ----------------------------------------------------------------------------------------------- the effect
class StyleTransfer(Effect):
    name = "style-transfer"
    summary = "Neural style transfer (Gatys et al.): multi-style, masks, colour preservation, tiles, L-BFGS"
    model = "vgg19"
    params = (
        Images("style", "style image(s), comma-separated", required=True),
        Floats("style_blend", None, "one weight per style (default: equal); masked styles use them as "
               "per-region strengths", min=0),
        Float("style_scale", 1.0, "style image size relative to the output canvas (longest sides)",
              min=0.05, max=8),
        Float("content_weight", 1e4, "weight of the content loss", min=0).per_model(_TUTORIAL),
        Float("style_weight", 1e-2, "weight of the style loss", min=0).per_model(
            _TUTORIAL, vgg16=(10.0, f"{_TUNED}: the tutorial's 1e-2 leaves a washed-out blur with none of the "
                                    "style; 1 only tints the photograph, 100 smooths its face away")),
        Float("tv_weight", 30.0, "weight of total variation, scaled to a 512x512 canvas", min=0).per_model(
            _TUTORIAL, vgg16=(1.0, f"{_TUNED}: 30 blurs the strokes")),
        Layers("content_layers", DEFAULT_CONTENT_LAYERS,
            "content layers, comma-separated, each optionally :weight", names_layers=True),
        Layers("style_layers", DEFAULT_STYLE_LAYERS, "style layers, comma-separated, each optionally :weight",
               names_layers=True),
        ImageOr("init", "content", INIT_CHOICES, "starting image: content, noise, style, or an image file "
                "(in a recipe, relative to the recipe's folder)"),
        Choice("optimizer", "adam", ("adam", "lbfgs"), "adam, or lbfgs (SciPy L-BFGS-B bounded to [0, 1]; "
               "steps = loss evaluations)").per_model(
            _TUTORIAL, vgg16=("lbfgs", f"{_TUNED}: the style shows after 40 evaluations, where Adam needs "
                                       "hundreds of steps")),
        Float("lr", 0.02, "Adam learning rate (tutorial: 0.02, with beta_1 0.99 and epsilon 0.1)",
              min=1e-6, max=10).only_when(optimizer="adam"),
        Int("steps", 300, "optimisation steps per scale (L-BFGS: loss evaluations per scale)", min=1,
            max=100_000).per_model(_TUTORIAL, vgg16=(60, f"{_TUNED}: after 60 L-BFGS evaluations the Gram "
                                                         "distance to the style is down 24-fold")),
        Int("scales", 1, "coarse-to-fine scales, each twice the previous size and starting from the "
            "upsampled previous result", min=1, max=8),
        Int("size", 512, "longest side of the output in pixels (0: the content image's size)", min=0,
            max=32_768, model_min="the content's size"),
        Choice("preserve_colors", "none", ("none", "luminance", "histogram"),
               "keep the content's colours: luminance-only transfer, or match the styles' colour histogram "
               "to the content first"),
        Images("mask", "one mask image per style (white: apply that style there)"),
        Choice("pooling", "max", ("max", "avg"), "the backbone's pooling layers (Gatys et al. use avg)"),
        Int("tile", 0, "tile size in pixels (0: whole image); tiles move every step so no seam forms",
            min=0, max=32_768, model_min="off"),
        Int("levels", 0, "posterise to this many levels per channel, optimised through a straight-through "
            "quantiser (0: off)", min=0, max=256),
        Int("snapshot_every", 0, "keep the image every N steps, written as numbered frames (0: none)", min=0,
            max=100_000),
        Precision("the network's compute dtype: bfloat16 is about 1.7x faster per step on CPUs with "
                  "AVX512-BF16, distances within 0.4% of float32's; Adam only (L-BFGS needs float32)"),
        *temporal.params(TEMPORAL_WEIGHT, "weight of the temporal loss: the mean squared distance to the warped "
                         "previous output where the flow is reliable, times the loss's value there (so the weight "
                         "does not depend on the backbone's scale)",
                         "with the tutorial's loss weights on the HED-fine-tuned VGG16: 0.24x the flicker, style "
                         "within 1.3%", vgg16=(VGG_TEMPORAL_WEIGHT, "with VGG16's own loss weights (style 10, tv "
                                               "1), on the HED-fine-tuned VGG16: 1e3 held the flicker down but "
                                               "let the style drift 54% on 8 frames")),
    )

    # --- checks (before any compute) -------------------------------------------------------------------------
    def check(self, params: Mapping[str, Any]) -> None:
        """Cross-parameter checks that need no model, so a mistake fails at once (and in a recipe's --check)."""
        n = len(params["style"])
        blend = params["style_blend"] or (1.0,) * n
        if len(blend) != n:
            raise ParameterError(f"parameter 'style_blend': {_fmt(blend)!r} has {len(blend)} weight(s) but "
                                 f"there are {n} style image(s); expected {n} numbers >= 0, one per style")
        if sum(blend) <= 0:
            raise ParameterError(f"parameter 'style_blend': {_fmt(blend)!r} sums to 0; expected at least one "
                                 f"positive weight")
        if params["mask"] and len(params["mask"]) != n:
            raise ParameterError(f"parameter 'mask': {len(params['mask'])} mask(s) for {n} style image(s); "
                                 f"expected one mask per style, comma-separated in the same order")
        if params["levels"] == 1:
            raise ParameterError("parameter 'levels': 1 is not allowed; expected 0 (off) or 2 to 256")
        if params["precision"] == "bfloat16" and params["optimizer"] == "lbfgs":
            # bench/RESULTS.md: bfloat16 L-BFGS stalls (60 evaluations short of float32's loss after 19)
            raise ParameterError("parameter 'precision': bfloat16 does not work with optimizer=lbfgs (its line "
                                 "search needs float32 gradients); use optimizer=adam, or precision=float32")

    # --- build ---------------------------------------------------------------------------------------------
    def build(self, ctx: RunContext, params: Mapping[str, Any]) -> Problem:
        from gradfx.engine.images.arrays import resize_longest
        from gradfx.engine.objectives import Objective
        from gradfx.engine.optimise.solver import Problem

        spec = ctx.spec
        min_size = spec.min_size
        styles_paths = tuple(params["style"])
        n = len(styles_paths)
        blend = params["style_blend"] or (1.0,) * n  # its length and sum: see check()
        masks_paths = params["mask"] or ()
        # LayerLists, their layers checked against the model by the plan
        content_layers, style_layers = dict(params["content_layers"]), dict(params["style_layers"])
        init_choice = params["init"]  # a keyword, or a file that prepare() found (against a recipe's folder)

        assert ctx.input is not None
        content = ctx.input.rgb
        if params["size"]:
            content = resize_longest(content, params["size"])
        final = (int(content.shape[0]), int(content.shape[1]))
        frame = content
        styles = [ctx.image(p).rgb for p in styles_paths]
        colors = params["preserve_colors"]
        if colors == "histogram":
            styles = [match_color_histogram(s, content) for s in styles]
        elif colors == "luminance":
            content_y = luminance(content)
            styles = [grey3(match_luminance(luminance(s), content_y)) for s in styles]
            content = grey3(content_y)

        if init_choice == "content":
            init = content
        elif init_choice == "noise":
            init = None
        elif init_choice == "style":
            init = fit(styles[0], final)
        else:
            init = fit(ctx.image(init_choice).rgb, final)
            if colors == "luminance":
                init = grey3(luminance(init))

        aligned: dict[str, np.ndarray] = {"content": content}
        for s, path in enumerate(masks_paths):
            aligned[f"mask{s}"] = fit(ctx.image(path).rgb, final).mean(axis=-1, keepdims=True)
        steps = params["steps"]
        # a video frame after the first: start from the previous output, warped, and stay near it; where the
        # warp cannot be trusted (uncovered background, what enters the picture) start from the frame itself:
        # a warped start there drags the previous frame's content along as a trail
        follow = temporal.follow(ctx, params, frame, content if init is None else init,
                                 look=(lambda img: grey3(luminance(img))) if colors == "luminance" else None)
        if follow is not None:
            init, steps = follow.init, follow.steps
            aligned.update(follow.aligned)
            aligned[ENTERING] = 1.0 - flow.sources_inside(follow.guide.backward)[..., None].astype(np.float32)

        terms = _Terms(content_layers=content_layers, style_layers=style_layers, styles=styles, blend=blend,
                       masked=bool(masks_paths), style_scale=params["style_scale"], min_size=min_size)
        parts = []
        if params["content_weight"] > 0:
            obj = Objective(terms.content, f"content({params['content_layers']})", content_layers,
                            terms.bind_content)
            parts.append(params["content_weight"] * obj)
        if params["style_weight"] > 0:
            obj = Objective(terms.style, f"style({params['style_layers']}; {n} image(s))", style_layers,
                            terms.bind_style)
            parts.append(params["style_weight"] * obj)
        if params["tv_weight"] > 0:
            parts.append(params["tv_weight"] * Objective(terms.tv, "tv", (), terms.bind_canvas))
        if not parts:
            raise ParameterError("content_weight, style_weight and tv_weight are all 0: nothing to optimise; "
                                 "set at least style_weight > 0")
        objective = parts[0]
        for part in parts[1:]:
            objective = objective + part
        if not objective.layers:  # tv only: the engine binds objectives only when there is an extractor
            raise ParameterError("style_weight and content_weight are both 0; set style_weight > 0")
        if follow is not None:
            objective = follow.hold(objective, params["temporal_weight"])
        if follow is not None and params["style_weight"] > 0 and aligned[ENTERING].any():
            # what enters the picture starts from the frame itself, and the style term alone leaves it pale: a
            # Gram matrix is a mean over the canvas, already near the style's, so a new strip barely moves it;
            # and once in, the temporal loss holds the strip as it was painted, so a pale band grows over the
            # frames. Hold the strip to the style on its own too (after the style term, whose targets it reads)
            objective = objective + ENTERING_WEIGHT * params["style_weight"] * Objective(
                terms.entering, f"style(pixels entering the picture; {params['style_layers']})", style_layers)

        sizes = _stage_sizes(final, params["scales"], min_size)
        adam = params["optimizer"] == "adam"
        return Problem(
            objective=objective,
            init=init,
            size=final,
            sizes=sizes,
            pooling=params["pooling"],
            steps=steps,
            optimizer=params["optimizer"],
            lr=params["lr"],
            optimizer_options={"beta_1": 0.99, "epsilon": 0.1} if adam else {},
            levels=params["levels"] or None,
            tile=params["tile"],
            aligned=aligned,
            snapshot_every=params["snapshot_every"],
            label="scale",
            precision=params["precision"],
        )

    # --- finish --------------------------------------------------------------------------------------------
    def finish(self, ctx: RunContext, params: Mapping[str, Any], solution: Solution) -> Output:
        content = ctx.input.rgb if ctx.input is not None else solution.image
        h, w = solution.image.shape[:2]
        content = fit(content, (h, w))

        def post(img: np.ndarray) -> np.ndarray:
            if params["preserve_colors"] == "luminance":
                return restore_chroma(img, content)
            return img

        extras: dict[str, Any] = {}
        if solution.snapshots:
            extras["snapshots"] = [post(fit(f, (h, w))) for f in solution.snapshots]
        report = {"sizes": [list(s) for s in solution.sizes]}
        return Output(post(solution.image), extras, report)


def _fmt(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


EFFECTS = (StyleTransfer(),)
