"""Video without flicker: style transfer over a generated moving scene, independent frames vs ``temporal=flow``.

    python bench/video.py                 # the full figure: 24 frames at 128 px (about 25 minutes on 2 CPU cores)
    python bench/video.py --frames 6      # a shorter check of the harness
    python bench/video.py --gif docs/video-before-after.webp   # also write the README's before/after animation

The scene is :func:`gradfx.engine.samples.moving_scene` (a camera panning across the generated landscape while a
striped disc crosses it); the style is the generated ``painting``. Style transfer runs with the trained VGG16
backbone (``--weights hed``) and L-BFGS. Figures (goals from issue 18):

- flicker: the mean absolute difference between output frame t and output frame t - 1 warped by the input
  frames' flow, over the consistent pixels (:func:`gradfx.engine.flow.flicker`), averaged over the video; also
  with the scene's true flow and visibility, which no estimate touches. Goal: temporal <= 0.5x independent;
- style distance per frame: the style loss itself (mean squared difference of position-normalised Gram matrices
  over the five style layers, trained backbone); goal: every frame's within 10% of its independent frame's;
- total time: goal: temporal <= independent.

Writes the "Video" section of ``bench/RESULTS.md`` (``--out FILE``: the section alone into FILE instead).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("GRADFX_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")


def style_distances(images: list[np.ndarray], style: np.ndarray, weights: str) -> list[float]:
    """Each image's style loss against ``style`` (the effect's own definition, unweighted)."""
    import tensorflow as tf

    from gradfx.engine import gram_matrix, models

    ext = models.get_extractor("vgg16", STYLE_LAYERS, weights)
    target = {k: gram_matrix(v) for k, v in ext(tf.constant(style[None])).items()}
    out = []
    for img in images:
        feats = ext(tf.constant(np.asarray(img, np.float32)[None]))
        out.append(float(np.mean([tf.reduce_mean(tf.square(gram_matrix(feats[k]) - target[k])) for k in STYLE_LAYERS])))
    return out


def true_flicker(scene, outputs: list[np.ndarray]) -> float:
    """Flicker with the scene's true backward flow and visibility instead of estimated ones."""
    from gradfx.engine import flow

    errors = []
    for t in range(1, len(outputs)):
        warped = flow.warp(outputs[t - 1], scene.backward[t])
        errors.append(float(np.abs(outputs[t] - warped).mean(axis=-1)[scene.valid[t]].mean()))
    return float(np.mean(errors))


def flow_methods(scene) -> list[str]:
    """OpenCV's DIS against Farnebäck on the scene, whose true flow and visibility are known: table rows."""
    from gradfx.engine import flow

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


def stylise(frames: np.ndarray, style_path: str, weights: str, steps: int, **params) -> tuple[list[np.ndarray], float]:
    from gradfx.engine import run_frames

    started = time.perf_counter()
    results = list(run_frames("style-transfer", list(frames), model="vgg16", weights=weights, style=style_path,
                              size=0, steps=steps, optimizer="lbfgs", content_weight=1e4, style_weight=1e-2,
                              tv_weight=30.0, **params))
    return [r.image for r in results], time.perf_counter() - started


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
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=60, help="L-BFGS evaluations for the first (and every "
                    "independent) frame")
    ap.add_argument("--fractions", default="0.5", help="temporal_steps as fractions of --steps, comma-separated "
                    "(the first is the figure the goals are checked on)")
    ap.add_argument("--temporal-weights", default="", help="temporal_weight values to try, comma-separated "
                    "(default: the effect's)")
    ap.add_argument("--weights", default="hed")
    ap.add_argument("--out", default=None, help="write the section alone here (default: into bench/RESULTS.md)")
    ap.add_argument("--gif", default=None, help="write the before/after animation here (.webp or .gif), "
                    "independent against the first temporal row")
    ap.add_argument("--save", default=None, help="keep every row's frames in this .npz")
    ap.add_argument("--flow-only", action="store_true", help="only compare the flow methods (seconds)")
    args = ap.parse_args(argv)

    import tempfile

    from gradfx.engine import flow, imageio, samples

    scene = samples.moving_scene(args.frames, args.size)
    flows = ["| flow | endpoint error (visible pixels) | visible pixels kept (mask > 0.5) | kept pixels not visible | "
             f"time, {args.frames - 1} pairs both ways |", "|---|---|---|---|---|", *flow_methods(scene)]
    if args.flow_only:
        print("\n".join(flows))
        return 0
    style = samples.painting(args.size)
    tmp = Path(tempfile.mkdtemp())
    style_path = str(imageio.save_image(tmp / "style.png", style))
    started = time.time()

    independent, t_ind = stylise(scene.frames, style_path, args.weights, args.steps, temporal="none")
    print(f"independent: {t_ind:.0f} s, flicker {flow.flicker(scene.frames, independent) * 255:.2f}/255", flush=True)
    rows = [("independent", args.steps, independent, t_ind)]
    weights = [float(w) for w in args.temporal_weights.split(",") if w] or [None]
    for frac in (float(f) for f in args.fractions.split(",")):
        for weight in weights:
            follow = max(1, round(args.steps * frac))
            extra = {} if weight is None else {"temporal_weight": weight}
            outs, secs = stylise(scene.frames, style_path, args.weights, args.steps, temporal="flow",
                                 temporal_steps=follow, **extra)
            name = f"temporal=flow, {follow} evaluations after the first"
            rows.append((name + ("" if weight is None else f", temporal_weight {weight:g}"), follow, outs, secs))
            print(f"{rows[-1][0]}: {secs:.0f} s, flicker {flow.flicker(scene.frames, outs) * 255:.2f}/255",
                  flush=True)

    d_ind = style_distances(independent, style, args.weights)
    table = []
    for name, _, outs, secs in rows:
        d = style_distances(outs, style, args.weights)
        ratio = [a / b for a, b in zip(d, d_ind, strict=True)]
        table.append((name, flow.flicker(scene.frames, outs), true_flicker(scene, outs), max(ratio),
                      float(np.mean(ratio)), secs))
    lines = ["## Video (`python bench/video.py`)", "",
             f"Generated by `python bench/video.py{' ' + ' '.join(argv or sys.argv[1:])}` on "
             f"{time.strftime('%Y-%m-%d %H:%M')}, {(time.time() - started) / 60:.1f} min, on a shared 2-core CPU "
             f"(seconds are noisy; the flicker and style figures are not).", "",
             f"Scene: `samples.moving_scene({args.frames}, {args.size})`; style: `samples.painting({args.size})`; "
             f"style-transfer on vgg16 with `--weights {args.weights}`, L-BFGS, {args.steps} evaluations per "
             f"independent frame and for the first frame.", "",
             "| run | flicker (estimated flow) | flicker (true flow) | style distance / independent (worst "
             "frame) | (mean) | total time |", "|---|---|---|---|---|---|"]
    base = table[0]
    for name, fl, tfl, worst, mean, secs in table:
        lines.append(f"| {name} | {fl * 255:.2f}/255 ({fl / base[1]:.2f}x) | {tfl * 255:.2f}/255 "
                     f"({tfl / base[2]:.2f}x) | {worst:.3f} | {mean:.3f} | {secs:.0f} s ({secs / base[5]:.2f}x) |")
    lines += ["", "Optical flow on the same scene (true flow known):", "", *flows]
    goal = table[1]
    met = {"flicker <= 0.5x": goal[1] <= 0.5 * base[1], "style within 10% on every frame": goal[3] <= 1.1,
           "time <= independent": goal[5] <= base[5]}
    lines += ["", "Goals (on the first temporal row): " + "; ".join(f"{k}: {'yes' if v else '**no**'}"
                                                               for k, v in met.items()) + ".", ""]
    section = "\n".join(lines)
    print(section)
    if args.out:
        Path(args.out).write_text(section)
    else:
        results = HERE / "RESULTS.md"
        old = results.read_text()
        pattern = re.compile(r"## Video \(`python bench/video.py`\).*?(?=\n## |\Z)", re.S)
        new = pattern.sub(section.rstrip("\n"), old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + section
        results.write_text(new)
    if args.save:
        np.savez_compressed(args.save, **{f"row{i}": np.stack(r[2]) for i, r in enumerate(rows)})
    if args.gif:
        save_animation(Path(args.gif), independent, rows[1][2])
        print(f"wrote {args.gif} ({Path(args.gif).stat().st_size / 1024:.0f} KB)")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
