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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from gradfx.engine import (
    Choice,
    Effect,
    Float,
    ImageOr,
    Int,
    Layers,
    Output,
    ParameterError,
    Precision,
    RunContext,
    styles,
)
from gradfx.engine.images.colour import grey3, luminance
from gradfx.engine.temporal import consistency as temporal
from gradfx.engine.temporal import flow

from .geometry import fit, stage_sizes
from .terms import ENTERING, TV_MAP, Terms

if TYPE_CHECKING:
    from gradfx.engine.optimise.solver import Problem, Solution

DEFAULT_CONTENT_LAYERS = "block5_conv2"
DEFAULT_STYLE_LAYERS = "block1_conv1,block2_conv1,block3_conv1,block4_conv1,block5_conv1"
INIT_CHOICES = ("content", "noise", "style", "fast")
#: the networks fast-style runs (its NETWORKS), which init=fast needs
FAST_NETWORKS = ("adain-vgg19-encoder", "adain-decoder")
#: temporal_weight's default, measured on the ImageNet VGG19 with the tutorial's loss weights and on VGG16 with its
#: own (bench/RESULTS-video.md)
TEMPORAL_WEIGHT = 1e2
#: the weight, relative to style_weight, of the style term of a video frame's pixels that entered the picture
#: (docs/video.md, "The fading, found and fixed")
ENTERING_WEIGHT = 0.5
#: the share of total variation a video frame's pixels carried from the previous frame get, where the flow is
#: trusted (docs/video.md, "The oldest pixels")
CARRIED_TV = 0.2
_TUTORIAL = "the TensorFlow style-transfer tutorial's, for VGG19"
_TUNED = "tuned by looking, on the HED-fine-tuned VGG16 (a photograph and a painting, 256 px)"

# RGB <-> YIQ (NTSC). Y is the luminance; I and Q carry the chroma that `preserve_colors=luminance` keeps.

# ----------------------------------------------------------------------------------------------- the effect
class StyleTransfer(Effect):
    name = "style-transfer"
    summary = "Neural style transfer (Gatys et al.): multi-style, masks, colour preservation, tiles, L-BFGS"
    model = "vgg19"
    networks = FAST_NETWORKS
    params = (
        styles.STYLE,
        styles.STYLE_BLEND,
        styles.STYLE_SCALE,
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
        ImageOr("init", "content", INIT_CHOICES, "starting image: content, noise, style, fast (fast-style's "
                "output for the same styles, blend, masks and colours: one forward pass of AdaIN), or an image "
                "file (in a recipe, relative to the recipe's folder)"),
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
        styles.PRESERVE_COLORS,
        styles.MASK,
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
                         "with the tutorial's loss weights on the ImageNet VGG19 (10 frames at 96 px): 0.13x the "
                         "flicker, style as far from the painting's as independent frames' on average; 1e4 froze "
                         "the first frame's strokes (style 2.9x as far), 1e3 1.5x",
                         vgg16=(TEMPORAL_WEIGHT, "with VGG16's own loss weights (style 10, tv 1), on the "
                                "HED-fine-tuned VGG16: 1e3 held the flicker down but let the style drift 54% on 8 "
                                "frames")),
    )

    # --- checks (before any compute) -------------------------------------------------------------------------
    def check(self, params: Mapping[str, Any]) -> None:
        """Cross-parameter checks that need no model, so a mistake fails at once (and in a recipe's --check)."""
        styles.check(params)
        if params["content_weight"] <= 0 and params["style_weight"] <= 0:  # tv alone reads no layer
            raise ParameterError("parameters 'content_weight' and 'style_weight' are both 0: nothing to match; "
                                 "set style_weight > 0")
        if params["levels"] == 1:
            raise ParameterError("parameter 'levels': 1 is not allowed; expected 0 (off) or 2 to 256")
        if params["precision"] == "bfloat16" and params["optimizer"] == "lbfgs":
            # bench/RESULTS.md: bfloat16 L-BFGS stalls (60 evaluations short of float32's loss after 19)
            raise ParameterError("parameter 'precision': bfloat16 does not work with optimizer=lbfgs (its line "
                                 "search needs float32 gradients); use optimizer=adam, or precision=float32")

    def networks_for(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        return FAST_NETWORKS if params["init"] == "fast" else ()

    # --- build ---------------------------------------------------------------------------------------------
    def build(self, ctx: RunContext, params: Mapping[str, Any]) -> Problem:
        from gradfx.engine.images.arrays import resize_longest
        from gradfx.engine.objectives import Objective, style_loss
        from gradfx.engine.optimise.solver import Problem

        spec = ctx.spec
        min_size = spec.min_size
        styles_paths = tuple(params["style"])
        n = len(styles_paths)
        blend = styles.blend(params)  # its length and sum: see check()
        masks_paths = params["mask"] or ()
        content_layers = dict(params["content_layers"])  # a LayerList, its layers checked by the plan
        init_choice = params["init"]  # a keyword, or a file that prepare() found (against a recipe's folder)

        assert ctx.input is not None
        content = ctx.input.rgb
        if params["size"]:
            content = resize_longest(content, params["size"])
        final = (int(content.shape[0]), int(content.shape[1]))
        frame = content
        colors = params["preserve_colors"]
        content, style_images = styles.prepare_colors(colors, content, [ctx.image(p).rgb for p in styles_paths])

        if init_choice == "content":
            init = content
        elif init_choice == "noise":
            init = None
        elif init_choice == "style":
            init = fit(style_images[0], final)
        elif init_choice == "fast":  # fast-style's output, which has the content's colours where asked
            init = fast_start(ctx, params, frame)
        else:
            init = fit(ctx.image(init_choice).rgb, final)
        if colors == "luminance" and init_choice not in INIT_CHOICES[:3]:
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
            # a carried pixel had its smoothing in the frame that painted it: more, frame after frame, is what a
            # single frame run ten times as long gets, and the oldest pixels soften (docs/video.md)
            aligned[TV_MAP] = 1.0 - (1.0 - CARRIED_TV) * follow.guide.mask[..., None].astype(np.float32)

        terms = Terms(content_layers=content_layers)
        style = style_loss(style_images, params["style_layers"], blend=blend, scale=params["style_scale"],
                           masks=[f"mask{s}" for s in range(len(masks_paths))],
                           description=f"style({params['style_layers']}; {n} image(s))")
        parts = []
        if params["content_weight"] > 0:
            obj = Objective(terms.content, f"content({params['content_layers']})", content_layers,
                            terms.bind_content)
            parts.append(params["content_weight"] * obj)
        if params["style_weight"] > 0:
            parts.append(params["style_weight"] * style)
        if params["tv_weight"] > 0:
            parts.append(params["tv_weight"] * Objective(terms.tv, "tv", (), terms.bind_canvas))
        objective = parts[0]  # check() made sure content or style is weighted
        for part in parts[1:]:
            objective = objective + part
        if follow is not None:
            objective = follow.hold(objective, params["temporal_weight"])
        if follow is not None and params["style_weight"] > 0 and aligned[ENTERING].any():
            # what enters the picture starts from the frame itself, and the style term alone leaves it pale: a
            # Gram matrix is a mean over the canvas, already near the style's, so a new strip barely moves it;
            # and once in, the temporal loss holds the strip as it was painted, so a pale band grows over the
            # frames. Hold the strip to the style on its own too (after the style term, whose targets it reads)
            objective = objective + ENTERING_WEIGHT * params["style_weight"] * style.within(
                ENTERING, f"style(pixels entering the picture; {params['style_layers']})")

        sizes = stage_sizes(final, params["scales"], min_size)
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
            return styles.restore_colors(params["preserve_colors"], img, content)

        extras: dict[str, Any] = {}
        if solution.snapshots:
            extras["snapshots"] = [post(fit(f, (h, w))) for f in solution.snapshots]
        report = {"sizes": [list(s) for s in solution.sizes]}
        return Output(post(solution.image), extras, report)


def fast_start(ctx: RunContext, params: Mapping[str, Any], content: np.ndarray) -> np.ndarray:
    """``init=fast``: fast-style's output for ``content`` (the canvas, before colour preservation) with this run's
    styles, blend, scale, masks and colour preservation: in one forward pass, the style already carried."""
    keep = ("style", "style_blend", "style_scale", "mask", "preserve_colors")
    shared = {k: params[k] for k in keep if params[k] is not None}
    return ctx.run_effect("fast-style", content, **shared).image


EFFECTS = (StyleTransfer(),)
