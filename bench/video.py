"""Video without flicker: an effect over a generated moving scene, independent frames vs ``temporal=flow``.

    python bench/video.py                 # style-transfer: 24 frames at 128 px (about 45 minutes on 2 loaded cores)
    python bench/video.py --effect deepdream
    python bench/video.py --frames 6 --variant temporal_weight=3e2 --variant temporal_frames=4   # rows to compare
    python bench/video.py --gif docs/video-before-after.webp   # also write the README's before/after animation

The scene is :func:`gradfx.engine.images.samples.moving_scene` (a camera panning across the generated landscape while a
striped disc crosses it); style-transfer's style is the generated ``painting``. The effect runs on VGG16 with the
trained backbone (``--weights hed``, what ``auto`` gives offline; ``--model vgg19 --weights imagenet``: the ImageNet
VGG19 that ``gradfx weights fetch`` brings) and its own defaults on that model, but for ``-p`` (every row) and each
``--variant`` (one ``temporal=flow`` row each). Figures (goals from issue 18):

- flicker: the mean absolute difference between output frame t and output frame t - 1 warped by the input
  frames' flow, over the consistent pixels (:func:`gradfx.engine.temporal.flow.flicker`), averaged over the video; also
  with the scene's true flow and visibility, which no estimate touches. Goal: temporal <= 0.5x independent;
- style-transfer, style distance per frame: the style loss itself (mean squared difference of
  position-normalised Gram matrices over the five style layers, trained backbone); goal: every frame's within
  10% of its independent frame's; deepdream, dream strength per frame (mean absolute difference from the
  input frame); goal: 0.8x to 1.25x its independent frame's;
- detail: each frame's finest detail (:func:`gradfx.engine.temporal.flow.detail`) against its independent frame's, the
  look that flicker does not see (a fading output flickers less); no goal in the issue, watched since a
  temporal output that faded passed every goal above;
- total time: goal: temporal <= independent.

Writes the effect's section of ``bench/RESULTS-video.md`` (``--out FILE``: of FILE); exit status 1 when the
first temporal row misses a goal.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("GRADFX_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")


def style_distances(images: list[np.ndarray], style: np.ndarray, model: str, weights: str) -> list[float]:
    """Each image's style loss against ``style`` (the effect's own definition, unweighted) on ``model``."""
    import tensorflow as tf

    from gradfx.engine import gram_matrix
    from gradfx.engine.models.extractor import get_extractor

    ext = get_extractor(model, STYLE_LAYERS, weights)
    target = {k: gram_matrix(v) for k, v in ext(tf.constant(style[None])).items()}
    out = []
    for img in images:
        feats = ext(tf.constant(np.asarray(img, np.float32)[None]))
        out.append(float(np.mean([tf.reduce_mean(tf.square(gram_matrix(feats[k]) - target[k])) for k in STYLE_LAYERS])))
    return out


def true_flicker(scene, outputs: list[np.ndarray]) -> float:
    """Flicker with the scene's true backward flow and visibility instead of estimated ones."""
    from gradfx.engine.temporal import flow

    errors = []
    for t in range(1, len(outputs)):
        warped = flow.warp(outputs[t - 1], scene.backward[t])
        errors.append(float(np.abs(outputs[t] - warped).mean(axis=-1)[scene.valid[t]].mean()))
    return float(np.mean(errors))


def flow_methods(scene) -> list[str]:
    """OpenCV's DIS against Farnebäck on the scene, whose true flow and visibility are known: table rows."""
    from gradfx.engine.temporal import flow

    rows = []
    for method in flow.METHODS:
        started = time.perf_counter()
        pairs = [(flow.optical_flow(scene.frames[t], scene.frames[t - 1], method),
                  flow.optical_flow(scene.frames[t - 1], scene.frames[t], method)) for t in range(1, len(scene.frames))]
        seconds = time.perf_counter() - started
        epe, kept, wrong = [], [], []
        for t, (b, f) in enumerate(pairs, start=1):
            valid, trusted = scene.valid[t], flow.consistency(b, f) > 0.5
            epe.append(np.linalg.norm(b - scene.backward[t], axis=-1)[valid].mean())
            kept.append((trusted & valid).sum() / valid.sum())
            wrong.append((trusted & ~valid).sum() / max(trusted.sum(), 1))
        rows.append(f"| {method} | {np.mean(epe):.2f} px | {np.mean(kept) * 100:.1f}% | {np.mean(wrong) * 100:.1f}% | "
                    f"{seconds:.2f} s |")
    return rows


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE[,KEY=VALUE...]`` strings as one dict (the values as the CLI's -p would take them)."""
    out = {}
    for text in pairs:
        for pair in filter(None, text.split(",")):
            key, sep, value = pair.partition("=")
            if not sep:
                raise SystemExit(f"bench/video.py: {pair!r} is not KEY=VALUE; e.g. temporal_weight=1e3")
            out[key.strip()] = value.strip()
    return out


def run_video(effect: str, frames: np.ndarray, model: str, weights: str, **params) -> tuple[list[np.ndarray], float, list]:
    """The effect over the frames in order (with its defaults but for ``params``): outputs, seconds, reports."""
    from gradfx.engine import run_frames

    started = time.perf_counter()
    results = list(run_frames(effect, list(frames), params=params, model=model, weights=weights, seed=0))
    return [r.image for r in results], time.perf_counter() - started, [r.report for r in results]


def save_animation(path: Path, before: list[np.ndarray], after: list[np.ndarray], fps: float = 8.0) -> None:
    """A side-by-side animation (independent | temporal), labelled, as WebP or GIF by the file's extension."""
    from PIL import Image, ImageDraw

    frames = []
    for a, b in zip(before, after, strict=True):
        h, w = a.shape[:2]
        canvas = Image.new("RGB", (2 * w + 4, h + 14), (255, 255, 255))
        canvas.paste(Image.fromarray(np.uint8(np.clip(a, 0, 1) * 255 + 0.5)), (0, 14))
        canvas.paste(Image.fromarray(np.uint8(np.clip(b, 0, 1) * 255 + 0.5)), (w + 4, 14))
        draw = ImageDraw.Draw(canvas)
        draw.text((4, 1), "independent", fill=(0, 0, 0))
        draw.text((w + 8, 1), "temporal=flow", fill=(0, 0, 0))
        frames.append(canvas)
    options = {"quality": 80, "method": 6} if path.suffix.lower() == ".webp" else {"optimize": True}
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0, **options)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--effect", default="style-transfer", choices=("style-transfer", "deepdream"))
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE[,...]",
                    help="an effect parameter for every row (default: the effect's VGG16 defaults)")
    ap.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,...]",
                    help="one temporal=flow row with these parameters (repeatable; default: one row with the "
                    "effect's temporal defaults); the goals are checked on the first")
    ap.add_argument("--model", default="vgg16", choices=("vgg16", "vgg19"))
    ap.add_argument("--weights", default="hed", help="hed (VGG16 only), imagenet (after `gradfx weights fetch`), random")
    ap.add_argument("--out", default=str(HERE / "RESULTS-video.md"), help="write the section here")
    ap.add_argument("--gif", default=None, help="write the before/after animation here (.webp or .gif), "
                    "independent against the first temporal row")
    ap.add_argument("--save", default=None, help="keep every row's frames in this .npz")
    ap.add_argument("--flow-only", action="store_true", help="only compare the flow methods (seconds)")
    args = ap.parse_args(argv)

    import tempfile

    from gradfx.engine.images import samples
    from gradfx.engine.images.save import save_image
    from gradfx.engine.temporal import flow

    scene = samples.moving_scene(args.frames, args.size)
    flows = ["| flow | endpoint error (visible pixels) | visible pixels kept (mask > 0.5) | kept pixels not visible | "
             f"time, {args.frames - 1} pairs both ways |", "|---|---|---|---|---|", *flow_methods(scene)]
    if args.flow_only:
        print("\n".join(flows))
        return 0
    base_params = parse_params(args.param)
    style = samples.painting(args.size)
    if args.effect == "style-transfer":
        tmp = Path(tempfile.mkdtemp())
        base_params = {"style": str(save_image(tmp / "style.png", style)), "size": 0, **base_params}
    started = time.time()
    load = [os.getloadavg()[0]]

    rows = []
    for name, extra in [("independent", {"temporal": "none"}),
                        *[(v, {"temporal": "flow", **parse_params([v])}) for v in args.variant or [""]]]:
        outs, secs, reports = run_video(args.effect, scene.frames, args.model, args.weights, **{**base_params, **extra})
        load.append(os.getloadavg()[0])
        label = name if name == "independent" else "temporal=flow" + (f", {name}" if name else "")
        rows.append((label, outs, secs, reports))
        print(f"{label}: {secs:.0f} s, flicker {flow.flicker(scene.frames, outs) * 255:.2f}/255", flush=True)

    independent = rows[0][1]
    if args.effect == "style-transfer":
        def measure(outs):  # each frame's style distance (trained backbone)
            return style_distances(outs, style, args.model, args.weights)
        what = "style distance"
    else:
        def measure(outs):  # each frame's dream strength: how far it moved from its input frame
            return [float(np.abs(o - f).mean()) for o, f in zip(outs, scene.frames, strict=True)]
        what = "dream strength (mean absolute difference from the input)"
    d_ind = measure(independent)
    table = []
    for name, outs, secs, reports in rows:
        ratio = [a / b for a, b in zip(measure(outs), d_ind, strict=True)]
        evaluations = sum(r.get("evaluations") or r.get("steps") or 0 for r in reports)
        kept = [flow.detail(o) / flow.detail(i) for o, i in zip(outs, independent, strict=True)]
        table.append((name, flow.flicker(scene.frames, outs), true_flicker(scene, outs), max(ratio), min(ratio),
                      float(np.mean(ratio)), secs, evaluations, min(kept), float(np.mean(kept))))
    resolved = rows[1][3][-1]["params"] if rows[1][3] and "params" in rows[1][3][-1] else {}
    shown = {k: resolved[k] for k in ("content_weight", "style_weight", "tv_weight", "optimizer", "steps",
                                      "layers", "step_size", "octaves", "temporal_weight", "temporal_steps")
             if k in resolved}
    lines = [f"## Video: {args.effect} (`python bench/video.py {shlex.join(argv or sys.argv[1:])}`)", "",
             f"Run on {time.strftime('%Y-%m-%d %H:%M')}, {(time.time() - started) / 60:.1f} min, on a shared 2-core "
             f"CPU (1-minute load {min(load):.1f}-{max(load):.1f}; the rows ran back to back in one process; "
             "seconds are noisy, the flicker and the ratios are not).", "",
             f"Scene: `samples.moving_scene({args.frames}, {args.size})`; {args.effect} on {args.model} with "
             f"`--weights {args.weights}`; parameters: the effect's defaults"
             + (f" but {', '.join(f'{k}={v}' for k, v in parse_params(args.param).items())}" if args.param else "")
             + (f" (first temporal row resolved: {', '.join(f'{k} {v}' for k, v in shown.items())})" if shown
                else "") + ".", "",
             f"| run | flicker (estimated flow) | flicker (true flow) | {what} / independent "
             f"({'worst frame' if args.effect == 'style-transfer' else 'lowest to highest frame'}) | "
             "(mean) | detail / independent (lowest frame, mean) | evaluations | total time |",
             "|---|---|---|---|---|---|---|---|"]
    base = table[0]
    for name, fl, tfl, worst, least, mean, secs, ev, kept_low, kept_mean in table:
        bad = f"{worst:.3f}" if args.effect == "style-transfer" else f"{least:.3f} to {worst:.3f}"
        lines.append(f"| {name} | {fl * 255:.2f}/255 ({fl / base[1]:.2f}x) | {tfl * 255:.2f}/255 "
                     f"({tfl / base[2]:.2f}x) | {bad} | {mean:.3f} | {kept_low:.2f}, {kept_mean:.2f} | {ev} | "
                     f"{secs:.0f} s ({secs / base[6]:.2f}x) |")
    lines += ["", "Optical flow on the same scene (true flow known):", "", *flows]
    goal = table[1]
    if args.effect == "style-transfer":
        met = {"flicker <= 0.5x": goal[1] <= 0.5 * base[1], "style within 10% on every frame": goal[3] <= 1.1,
               "time <= independent": goal[6] <= base[6]}
    else:
        met = {"flicker <= 0.5x": goal[1] <= 0.5 * base[1], "every frame dreams 0.8x to 1.25x as strongly":
               0.8 <= goal[4] and goal[3] <= 1.25, "time <= independent": goal[6] <= base[6]}
    lines += ["", "Goals (on the first temporal row): " + "; ".join(f"{k}: {'yes' if v else '**no**'}"
                                                               for k, v in met.items()) + ".", ""]
    section = "\n".join(lines)
    print(section)
    out = Path(args.out)
    old = out.read_text() if out.exists() else ""
    pattern = re.compile(rf"## Video: {re.escape(args.effect)} .*?(?=\n## |\Z)", re.S)
    out.write_text(pattern.sub(lambda _: section.rstrip("\n"), old) if pattern.search(old)
                   else (old.rstrip("\n") + "\n\n" if old else "") + section)
    if args.save:
        np.savez_compressed(args.save, **{f"row{i}": np.stack(r[1]) for i, r in enumerate(rows)})
    if args.gif:
        save_animation(Path(args.gif), independent, rows[1][1])
        print(f"wrote {args.gif} ({Path(args.gif).stat().st_size / 1024:.0f} KB)")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
