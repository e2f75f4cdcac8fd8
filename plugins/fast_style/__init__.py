"""The built-in ``fast-style`` effect: arbitrary style transfer in one forward pass (AdaIN, Huang & Belongie
2017), with the reference's trained networks (``gradfx weights``: ``adain-vgg19-encoder``, ``adain-decoder``).

It does not optimise: :meth:`FastStyle.run` encodes the content and the styles, moves the content's
features to the styles' statistics (:mod:`.transfer`) and decodes, in tiles for large images. Its controls are
the paper's: ``alpha`` (content-style trade-off), several styles blended with weights, styles in regions given
by masks, colour preservation (style-transfer's options and code, :mod:`gradfx.engine.styles`) and the style
image's scale. Over video frames ``temporal=flow`` holds each output to the previous one, warped by the
optical flow, where the flow is trusted (:mod:`.video`). TensorFlow is imported only when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gradfx.engine import Effect, Float, GradfxError, Int, Output, ParameterError, styles
from gradfx.engine.temporal import consistency as temporal

from . import video
from .transfer import HALO

if TYPE_CHECKING:
    from gradfx.engine import RunContext

#: the trained networks it runs (the package index's names: gradfx weights list)
NETWORKS = ("adain-vgg19-encoder", "adain-decoder")
#: tiles of at most this many pixels a side, plus their halo, beyond which an image is stylised in tiles
TILE = 1024
#: the smallest side a style image is encoded at (relu4_1 needs a few positions for its statistics)
MIN_STYLE = 32
#: the smallest tile (a tile is mostly halo below this)
MIN_TILE = 64


class FastStyle(Effect):
    name = "fast-style"
    summary = "Arbitrary style transfer in one forward pass (AdaIN): any style, blends, masks, colours, video"
    model = None
    networks = NETWORKS
    params = (
        styles.STYLE,
        styles.STYLE_BLEND,
        Float("alpha", 1.0, "content-style trade-off: 1 the full style, 0 the content as the decoder rebuilds "
              "it", min=0, max=1),
        styles.STYLE_SCALE,
        styles.PRESERVE_COLORS,
        styles.MASK,
        Int("size", 0, "longest side of the output in pixels (0: the input's size)", min=0, max=32_768),
        Int("tile", TILE, "stylise images larger than this in tiles of this many pixels a side (plus a "
            f"{HALO} px halo: the same image as whole), for bounded memory (0: whole)", min=0, max=32_768),
        *video.params(),
    )

    def check(self, params: Mapping[str, Any]) -> None:
        styles.check(params)
        if 0 < params["tile"] < MIN_TILE:
            raise ParameterError(f"parameter 'tile': {params['tile']} is not allowed; expected 0 (whole) or at "
                                 f"least {MIN_TILE} px")

    def run(self, ctx: RunContext, params: Mapping[str, Any]) -> Output:
        import tensorflow as tf

        from gradfx.engine.images.arrays import resize_longest, resize_to

        from . import transfer

        assert ctx.input is not None
        content = ctx.input.rgb
        if params["size"]:
            content = resize_longest(content, params["size"])
        h, w = content.shape[:2]
        mode = params["preserve_colors"]
        seen, style_images = styles.prepare_colors(mode, content, [ctx.image(p).rgb for p in params["style"]])
        masks = [resize_to(ctx.image(p).rgb, (h, w)).mean(axis=-1) for p in params["mask"] or ()]
        nets = transfer.Networks(ctx.network(NETWORKS[0]), ctx.network(NETWORKS[1]))
        style_images = [resize_to(s, styles.style_size(s.shape, (h, w), params["style_scale"], MIN_STYLE))
                        for s in style_images]
        stage = f"fast-style ({w}x{h})"

        def step(done: int, total: int) -> bool:
            ctx.progress(stage, done, total)
            return not ctx.cancelled

        tile = params["tile"]
        while True:
            try:
                stats = [transfer.style_stats(nets, s, tile) for s in style_images]
                out = transfer.stylise(nets, seen, stats, styles.blend(params), masks=masks,
                                       alpha=params["alpha"], tile=tile, step=step)
                break
            except tf.errors.ResourceExhaustedError:  # the engine's solves retry so too
                smaller = (tile or max(h, w, *(max(s.shape[:2]) for s in style_images))) // 2
                if smaller < MIN_TILE:
                    raise GradfxError(f"effect {self.name!r} ran out of device memory even with {tile} px tiles; "
                                      "use a smaller size, or --device cpu") from None
                ctx.warn(f"out of device memory; retrying with {smaller} px tiles")
                tile = smaller
        if out is None:  # cancelled: the content, as the image so far
            return Output(content, report={"partial": True, "status": "cancelled"})
        out = styles.restore_colors(mode, out, content)
        follow = video.follow(ctx, params, content, out)
        report: dict[str, Any] = {"size": [w, h]}
        if follow is not None:
            out, report["temporal"] = follow
        ctx.progress(stage, 1, 1, image=out)
        return Output(out, report=report)


EFFECTS = (FastStyle(),)

__all__ = ["EFFECTS", "NETWORKS", "FastStyle", "temporal"]
