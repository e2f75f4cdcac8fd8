"""How far more steps take feature-vis on the benchmark's hardest channels (not a test; about 5 minutes).

    python bench/featurevis_ceiling.py                       # channels 3 and 9, 800 steps each
    python bench/featurevis_ceiling.py --channels 3 --steps 200 --at 50,100,200

``bench/run.py`` gives the feature-vis effect 24 steps for 16 channels of ``block4_conv1`` (its time budget
is the baseline's 16 filters x 30 steps). This runs the same effect with the same settings
(``run.FV_OBJECTIVE``, ``run.FV_PARAMS``, seeded random VGG19, 128 px) on one channel at a time for many
more steps, keeps snapshots, and ranks each 8-bit snapshot as ``bench/run.py`` does: the channel's place
among the layer's 512 channels by mean activation (0 = strongest; the goal is below 5), and its mean
activation over the 5th strongest other channel's (1 or more = in the top 5).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from run import FV_OBJECTIVE, FV_PARAMS, strongest_rank


def own_over_fifth(extractor, layer: str, image_u8: np.ndarray, channel: int) -> float:
    """``channel``'s mean activation on the image over the 5th strongest other channel's."""
    import tensorflow as tf

    act = extractor(tf.constant(image_u8[None].astype(np.float32) / 255.0))[layer]
    means = tf.reduce_mean(act, axis=(0, 1, 2)).numpy()
    return float(means[channel] / np.sort(np.delete(means, channel))[-5])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--channels", default="3,9", help="channels of block4_conv1, comma separated")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--at", default="24,50,100,200,400,800", help="steps at which to rank the image")
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()

    from gradfx.engine import run
    from gradfx.engine.images.arrays import to_uint8
    from gradfx.engine.models import extractor

    layer = "block4_conv1"
    ext = extractor.get_extractor("vgg19", (layer,), "random", seed=0)
    at = sorted({int(s) for s in args.at.split(",") if int(s) <= args.steps} | {args.steps})
    print(f"feature-vis, {args.size} px, {FV_PARAMS}, objective {FV_OBJECTIVE.format(layer=layer, channels='C')}",
          flush=True)
    print("| channel | " + " | ".join(f"{s} steps" for s in at) + " | seconds |")
    print("|---|" + "---|" * (len(at) + 1))
    for channel in (int(c) for c in args.channels.split(",")):
        objective = FV_OBJECTIVE.format(layer=layer, channels=channel)
        t0 = time.perf_counter()
        result = run("feature-vis", None,
                     params={"objective": objective, "size": args.size, "steps": args.steps,
                             "thresholds": ",".join(map(str, at)), **FV_PARAMS},
                     model="vgg19", weights="random", seed=0)
        seconds = time.perf_counter() - t0
        cells = []
        for s in at:
            im = to_uint8(result.extras[f"step{s:04d}"])
            cells.append(f"rank {strongest_rank(ext, layer, im, channel)}, "
                         f"{own_over_fifth(ext, layer, im, channel):.2f}x the 5th")
        print(f"| {channel} | " + " | ".join(cells) + f" | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
