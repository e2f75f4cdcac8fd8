"""fast-style (AdaIN in one pass) side by side with style-transfer, on video, as style-transfer's start, and in
tiles; writes its sections of ``bench/RESULTS-fast-style.md`` (not a test).

    KERAS_HOME=/path/with/the/networks python bench/fast_style.py          # every section (hours on a busy 2-core CPU)
    python bench/fast_style.py --only video --only init                    # some sections; the others' stay
    python bench/fast_style.py --quick --out /tmp/quick.md                 # small sizes: checks the harness
    python bench/fast_style.py --picture docs/fast-style.png               # the docs' picture

It needs the trained networks in ``$KERAS_HOME/models``: fast-style's (``gradfx weights fetch
adain-vgg19-encoder adain-decoder``) and VGG19's ImageNet file (``gradfx weights fetch vgg19-imagenet``), on
which style-transfer runs its defaults and every distance is measured. Sections (issue 26):

- ``speed``: ``gradfx run fast-style`` against ``gradfx run style-transfer`` with its defaults at 256 and 512 px
  (each the user's whole command, in a subprocess), and fast-style's time per image in a warm process; where
  each ends: the Gram distance to the style and the content distance, as fractions of the photograph's and the
  style image's, on VGG19 (the quality tests' measure, ``style_judge`` in tests/photos.py). Goals: 1/50 of the
  time at 512 px; at 256 px at most 0.5 and below 1. Also fast-style alone on three photographs and two
  generated styles;
- ``video``: fast-style over 24 frames of the generated moving scene (128 px) and of a clip made from a
  photograph (a camera panning and zooming by fractions of a pixel), independent frames against
  ``temporal=flow``: flicker, detail per frame, time per frame; and ``gradfx batch`` on the scene as an .mp4.
  Goals: flicker <= 0.5x, every frame's detail >= 0.9 of its independent frame's, time <= 1.5x;
- ``init``: style-transfer's defaults on VGG19 from the content (its default) and from fast-style's output
  (``init=fast``), against the TensorFlow tutorial's algorithm on the same loss: time and evaluations to the
  tutorial's 300-step loss. Goal: <= 0.1x the tutorial's time;
- ``tiles``: peak memory (a fresh process per run) and time of fast-style at 2048 px whole and in 1024 px
  tiles, and at 4096 px in tiles.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADFX_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append(str(HERE.parent / "tests"))  # photos.py

SECTIONS = ("speed", "video", "init", "tiles")
FULL = {"sizes": (256, 512), "frames": 24, "frame_size": 128, "clip_size": 160, "init_size": 256,
        "tutorial_steps": 300, "budget": 300, "tile_sizes": ((2048, 0), (2048, 1024), (4096, 1024))}
QUICK = {"sizes": (64, 96), "frames": 4, "frame_size": 64, "clip_size": 64, "init_size": 64,
         "tutorial_steps": 20, "budget": 20, "tile_sizes": ((256, 0), (256, 128))}


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def gradfx(*args: str) -> float:
    """Seconds of a ``gradfx`` command in a subprocess (the user's whole command: start-up, TensorFlow's
    import, building the networks); fails loudly."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gradfx", *args, "-q", "--overwrite"], check=True)
    return time.perf_counter() - started


def judge(content: np.ndarray, style: np.ndarray):
    from photos import style_judge

    return style_judge(content, style, model="vgg19", weights="imagenet")


def fmt(pair: tuple[float, float]) -> str:
    return f"style {pair[0]:.3f}, content {pair[1]:.3f}"


# ------------------------------------------------------------------------------------------- speed


def section_speed(cfg: dict, work: Path) -> list[str]:
    from photos import PHOTOS, photo

    from gradfx.engine import run
    from gradfx.engine.images import samples
    from gradfx.engine.images.load import load_image
    from gradfx.engine.images.save import save_image

    lines = ["| size | `gradfx run fast-style` | `gradfx run style-transfer` (defaults: VGG19, 300 Adam steps) | "
             "ratio | fast-style in a warm process | where each ends (fast-style; style-transfer) |",
             "|---|---|---|---|---|---|"]
    goals = []
    for size in cfg["sizes"]:
        content = photo("astronaut", size)
        image = save_image(work / f"astronaut{size}.png", content, overwrite=True)
        style_file = save_image(work / f"painting{size}.png", samples.painting(size), overwrite=True)
        style = load_image(style_file).rgb
        out_fast, out_st = work / f"fast{size}.png", work / f"st{size}.png"
        t_fast = gradfx("run", "fast-style", str(image), "-p", f"style={style_file}", "-o", str(out_fast))
        t_st = gradfx("run", "style-transfer", str(image), "-p", f"style={style_file}", "-o", str(out_st),
                      "--size", str(size))
        run("fast-style", content, params={"style": str(style_file)})  # networks built and traced once
        warm = statistics.median(_timed(run, "fast-style", content, params={"style": str(style_file)})
                                 for _ in range(3))
        measure = judge(content, style)
        m_fast, m_st = measure(load_image(out_fast).rgb), measure(load_image(out_st).rgb)
        lines.append(f"| {size} px | {t_fast:.1f} s | {t_st:.0f} s | {t_fast / t_st:.4f}x (1/{t_st / t_fast:.0f}) | "
                     f"{warm:.2f} s | {fmt(m_fast)}; {fmt(m_st)} |")
        print(lines[-1], flush=True)  # style-transfer's default run at 512 px takes an hour on a busy CPU
        if size == max(cfg["sizes"]):
            goals.append(f"at {size} px at most 1/50 of style-transfer's time: "
                         f"{'yes' if t_fast <= t_st / 50 else '**no**'}")
        if size == min(cfg["sizes"]):
            goals.append(f"at {size} px Gram distance <= 0.5 and content distance < 1: "
                         f"{'yes' if m_fast[0] <= 0.5 and m_fast[1] < 1 else '**no**'}")
    alone = min(256, max(cfg["sizes"]))
    lines += ["", f"fast-style alone at {alone} px (style, content), on VGG19:", "",
              "| photograph | `samples.painting` | `samples.strokes` |", "|---|---|---|"]
    styles = {name: save_image(work / f"{name}.png", getattr(samples, name)(alone), overwrite=True)
              for name in ("painting", "strokes")}
    for name in PHOTOS:
        content = photo(name, alone)
        cells = []
        for file in styles.values():
            out = run("fast-style", content, params={"style": str(file)}).image
            cells.append(fmt(judge(content, load_image(file).rgb)(out)))
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return ["Goals: " + "; ".join(goals) + ".", "", *lines]


def _timed(fn, *args, **kwargs) -> float:
    started = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------- video


def photo_clip(frames: int, size: int, name: str = "coffee", pan: tuple[float, float] = (1.3, 0.45),
               zoom: float = 1.004) -> np.ndarray:
    """A clip from a photograph: a camera panning ``pan`` px a frame and zooming by ``zoom`` a frame, so every
    pixel moves by fractions of a pixel (bicubic resampling of the photograph, first shrunk by area)."""
    import cv2
    from skimage import data

    src = getattr(data, name)().astype(np.float32) / 255.0
    k = size * 1.6 / min(src.shape[:2])
    src = cv2.resize(src, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    h, w = src.shape[:2]
    out = []
    for t in range(frames):
        s = zoom**t
        cx = w / 2 + pan[0] * (t - frames / 2) / s
        cy = h / 2 + pan[1] * (t - frames / 2) / s
        matrix = np.float32([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]])
        out.append(np.clip(cv2.warpAffine(src, matrix, (size, size), flags=cv2.INTER_CUBIC), 0, 1))
    return np.stack(out)


def _rows(frames, style_file, true_flicker=None) -> tuple[list[str], dict]:
    from gradfx.engine import run_frames
    from gradfx.engine.temporal import flow

    run_frames("fast-style", list(frames[:1]), params={"style": str(style_file)}).__next__()  # built and traced first
    results, hold = {}, []
    for label, extra in (("independent", {}), ("`temporal=flow`", {"temporal": "flow"}),
                         ("`temporal=flow`, `temporal_weight=0.5`", {"temporal": "flow", "temporal_weight": 0.5})):
        started = time.perf_counter()
        ran = list(run_frames("fast-style", list(frames), params={"style": str(style_file), **extra}))
        results[label] = ([r.image for r in ran], time.perf_counter() - started)
        if extra == {"temporal": "flow"}:  # what holding cost, against the whole run of each frame
            hold = [r.report["temporal"]["seconds"] / r.report["seconds"] for r in ran[1:]]
    base_outs, base_secs = results["independent"]
    base = flow.flicker(frames, base_outs)
    lines = []
    for label, (outs, secs) in results.items():
        fl = flow.flicker(frames, outs)
        kept = [flow.detail(o) / flow.detail(i) for o, i in zip(outs, base_outs, strict=True)]
        true = "" if true_flicker is None else f"{true_flicker(outs) * 255:.2f}/255 | "
        lines.append(f"| {label} | {fl * 255:.2f}/255 ({fl / base:.2f}x) | {true}{min(kept):.3f}, "
                     f"{np.mean(kept):.3f} | {secs / len(frames):.3f} s ({secs / base_secs:.2f}x) |")
    outs, secs = results["`temporal=flow`"]
    kept = [flow.detail(o) / flow.detail(i) for o, i in zip(outs, base_outs, strict=True)]
    met = {"flicker <= 0.5x": flow.flicker(frames, outs) <= 0.5 * base, "every frame's detail >= 0.9": min(kept) >= 0.9,
           "time <= 1.5x": secs <= 1.5 * base_secs}
    lines.append(f"| (holding: the flow both ways, the mask and the blend, in the `temporal=flow` row's reports) | | "
                 f"{'| ' if true_flicker is not None else ''}| {np.mean(hold):.1%} of a frame's run (at most "
                 f"{max(hold):.1%}) |")
    return lines, met


def section_video(cfg: dict, work: Path) -> list[str]:
    from video import true_flicker  # bench/video.py

    from gradfx.engine.batch import run_batch
    from gradfx.engine.images import samples, video
    from gradfx.engine.images.load import load_image
    from gradfx.engine.images.save import save_image
    from gradfx.engine.temporal import flow

    n, size = cfg["frames"], cfg["frame_size"]
    scene = samples.moving_scene(n, size)
    style_file = save_image(work / "painting-video.png", samples.painting(size), overwrite=True)
    head = "| run | flicker (estimated flow) | {}detail / independent (lowest frame, mean) | time per frame |"
    out = [f"The generated scene, `samples.moving_scene({n}, {size})`, style `samples.painting({size})`:", "",
           head.format("flicker (true flow) | "), "|---|---|---|---|---|"]
    lines, met_scene = _rows(scene.frames, style_file, lambda outs: true_flicker(scene, outs))
    out += lines
    clip = photo_clip(n, cfg["clip_size"])
    out += ["", f"A clip from scikit-image's `coffee` photograph ({n} frames at {cfg['clip_size']} px: a camera "
                "panning 1.3 px and 0.45 px a frame and zooming 0.4% a frame, so the motion is in fractions of a "
                "pixel):", "", head.format(""), "|---|---|---|---|"]
    lines, met_clip = _rows(clip, style_file)
    out += lines
    # the command: gradfx batch on a video, independent against temporal=flow
    mp4 = work / "scene.mp4"
    video.write_video(mp4, list(scene.frames), 12)
    batch = {}
    for label, params in (("independent", {}), ("temporal=flow", {"temporal": "flow"})):
        folder = work / f"batch-{label}"
        started = time.perf_counter()
        summary = run_batch("fast-style", [mp4], folder, params={"style": str(style_file), **params}, overwrite=True)
        assert summary.ok, summary.failed
        frames = sorted((folder / "scene").glob("*.png"))
        batch[label] = ([load_image(f).rgb for f in frames], time.perf_counter() - started)
    decoded = list(video.read_frames(mp4))
    (ind, t_ind), (tem, t_tem) = batch["independent"], batch["temporal=flow"]
    f_ind, f_tem = flow.flicker(decoded, ind), flow.flicker(decoded, tem)
    kept = [flow.detail(a) / flow.detail(b) for a, b in zip(tem, ind, strict=True)]
    out += ["", f"`gradfx batch fast-style scene.mp4 -p style=painting.png [-p temporal=flow]` (the scene encoded "
                f"as H.264 at 12 fps; flicker against the decoded frames): independent {f_ind * 255:.2f}/255 in "
                f"{t_ind:.1f} s; temporal=flow {f_tem * 255:.2f}/255 ({f_tem / f_ind:.2f}x), detail lowest "
                f"{min(kept):.3f}, mean {np.mean(kept):.3f}, in {t_tem:.1f} s ({t_tem / t_ind:.2f}x)."]
    goals = [f"{k} (scene {'yes' if met_scene[k] else '**no**'}, clip {'yes' if met_clip[k] else '**no**'})"
             for k in met_scene]
    return ["Goals, on the `temporal=flow` rows: " + "; ".join(goals) + ".", "", *out]


# -------------------------------------------------------------------------------------------- init


def section_init(cfg: dict, work: Path) -> list[str]:
    import math

    from photos import photo
    from run import Backbone, _reached, baseline_style, effect_style

    from gradfx.engine.images import samples
    from gradfx.engine.images.load import load_image
    from gradfx.engine.images.save import save_image
    from gradfx.plugins.style_transfer.terms import TV_REFERENCE_SIDE

    size, n, budget = cfg["init_size"], cfg["tutorial_steps"], cfg["budget"]
    bb = Backbone("imagenet", "", "", "vgg19", "imagenet", ())
    content = photo("astronaut", size)
    style_file = save_image(work / f"painting-init{size}.png", samples.painting(size), overwrite=True)
    style = load_image(style_file).rgb
    measure = judge(content, style)
    first = effect_style(bb, content, str(style_file), steps=1)  # the defaults, as the run resolved them
    p = first["params"]
    same = (p["style_weight"], p["content_weight"], p["tv_weight"] * TV_REFERENCE_SIDE / math.sqrt(size * size))
    base = baseline_style(bb.keras_model(), content, style, same, n)
    save_image(work / "init-tutorial.png", base["image"], overwrite=True)
    rows = [f"| the tutorial's algorithm (Adam 0.02 from the content) | {n} steps: {base['loss']:.4g} | {n} | "
            f"{base['seconds']:.1f} s | 1x | {fmt(measure(base['image']))} |"]
    best = None
    for optimizer, steps in (("adam", budget), ("lbfgs", max(1, budget // 3))):
        for init in ("content", "fast"):
            ran = effect_style(bb, content, str(style_file), steps=steps, init=init, optimizer=optimizer)
            save_image(work / f"init-{optimizer}-{init}.png", ran["image"], overwrite=True)
            hit = _reached(ran["trace"], base["loss"])
            reach = ("-", "not reached", "-") if hit is None else (
                str(hit[1]), f"{hit[0]:.1f} s", f"{hit[0] / base['seconds']:.3f}x")
            rows.append(f"| `init={init}`, `optimizer={optimizer}` | {steps}: {ran['trace'][-1][1]:.4g} | "
                        f"{reach[0]} | {reach[1]} | {reach[2]} | {fmt(measure(ran['image']))} |")
            if init == "fast" and hit is not None:
                best = min(best or math.inf, hit[0] / base["seconds"])
    goal = "no start reached it" if best is None else f"{best:.3f}x ({'yes' if best <= 0.1 else '**no**'})"
    return [f"scikit-image's astronaut at {size} px, `samples.painting({size})`; VGG19 with ImageNet weights; "
            f"the loss is style-transfer's default (content {p['content_weight']:g}, style {p['style_weight']:g}, "
            f"TV {p['tv_weight']:g} per 512 px canvas), which the tutorial's algorithm minimises too. Each run goes "
            "its whole budget (Adam: the default's 300 steps; L-BFGS: a third of it, in evaluations); its time to "
            "the tutorial's loss is read from its trace and includes building the models and (init=fast) "
            "fast-style's pass. Goal: the fast start reaches the tutorial's loss in at most 0.1x the tutorial's "
            "time: " + goal + ".", "",
            "| run | evaluations: final loss | evaluations to the tutorial's loss | time to it | / tutorial's time | "
            "where it ends (style, content) |", "|---|---|---|---|---|---|", *rows]


# ------------------------------------------------------------------------------------------- tiles


def section_tiles(cfg: dict, work: Path) -> list[str]:
    from photos import photo

    from gradfx.engine import run
    from gradfx.engine.images import samples
    from gradfx.engine.images.save import save_image
    from gradfx.plugins.fast_style import transfer

    style_file = save_image(work / "painting-tiles.png", samples.painting(512), overwrite=True)
    content = photo("astronaut", max(cfg["sizes"]))
    whole = run("fast-style", content, params={"style": str(style_file), "tile": 0}).image
    seams = []
    for halo in (transfer.HALO, transfer.HALO // 2):
        kept, transfer.HALO = transfer.HALO, halo
        try:
            tiled = run("fast-style", content,
                        params={"style": str(style_file), "tile": max(cfg["sizes"]) // 3}).image
        finally:
            transfer.HALO = kept
        d = np.abs(tiled - whole)
        seams.append(f"a {halo} px halo: largest difference {d.max():.2g}, mean {d.mean():.2g}, 8-bit values off by "
                     f"more than 2: {np.mean(np.abs(np.round(tiled * 255) - np.round(whole * 255)) > 2):.2%}")
    lines = [f"Whole against tiled ({max(cfg['sizes']) // 3} px tiles) on the astronaut at {max(cfg['sizes'])} px: "
             + "; ".join(seams) + ".", "",
             "| size | tile | peak memory of the process | time (in-process, after the networks are built) |",
             "|---|---|---|---|"]
    for size, tile in cfg["tile_sizes"]:
        code = ("import resource, time, numpy as np\nfrom gradfx.engine import run\nfrom gradfx.engine.images "
                f"import samples\nimg = samples.landscape({size * 3 // 4})\nrun('fast-style', img[:64, :64], "
                f"params={{'style': {str(style_file)!r}}})\nt = time.perf_counter()\nr = run('fast-style', img, "
                f"params={{'style': {str(style_file)!r}, 'tile': {tile}}})\n"
                "print(time.perf_counter() - t, r.image.shape, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        seconds, *_, peak = done.stdout.split()
        lines.append(f"| {size * 3 // 4}x{size} | {tile or 'whole'} | {int(peak) / 1024:.0f} MB | "
                     f"{float(seconds):.1f} s |")
    return lines


# ----------------------------------------------------------------------------------------- picture


def picture(path: Path, size: int = 256, shown: int = 176) -> None:
    """docs/fast-style.png: a grid of scikit-image's photographs (columns) painted in the two generated styles
    (rows), then the controls on the astronaut. Every run is at ``size`` px (the measured size: at 176 px the
    strokes are as large as the astronaut's face) and shown at ``shown`` px; a PNG, quantised to 256 colours
    when it is over 300 KB (it is: 375 KB at 719x1020)."""
    from photos import PHOTOS, photo
    from PIL import Image

    from gradfx.engine import run
    from gradfx.engine.images import samples
    from gradfx.engine.images.arrays import resize_longest
    from gradfx.engine.images.save import save_image
    from gradfx.engine.images.sheets import labelled_sheet

    def fast(content: np.ndarray, **params) -> np.ndarray:
        return resize_longest(run("fast-style", content, params=params).image, shown)

    work = Path(tempfile.mkdtemp(prefix="gradfx-picture-"))
    files = {name: str(save_image(work / f"{name}.png", getattr(samples, name)(size))) for name in
             ("painting", "strokes")}
    photos = {name: photo(name, size) for name in PHOTOS}
    blank = np.ones((shown, shown, 3), np.float32)
    tiles = [("", blank)] + [(f"{name} (the photograph)", resize_longest(img, shown)) for name, img in photos.items()]
    for style, file in files.items():
        tiles.append((f"style: samples.{style}", resize_longest(getattr(samples, style)(size), shown)))
        tiles += [(f"{name} in {style}", fast(img, style=file)) for name, img in photos.items()]
    left = np.zeros((size, size, 3), np.float32)
    left[:, : size // 2] = 1
    masks = ",".join(str(save_image(work / f"{side}.png", m)) for side, m in (("left", left), ("right", 1 - left)))
    both = f"{files['painting']},{files['strokes']}"
    strokes = files["strokes"]
    for label, params in (("alpha=0 (strokes): the decoder's reconstruction", {"style": strokes, "alpha": 0.0}),
                          ("alpha=0.5 (strokes)", {"style": strokes, "alpha": 0.5}),
                          ("style_blend=1,1 (painting and strokes)", {"style": both}),
                          ("mask: painting left, strokes right", {"style": both, "mask": masks}),
                          ("preserve_colors=luminance (strokes)", {"style": strokes, "preserve_colors": "luminance"}),
                          ("preserve_colors=histogram (strokes)", {"style": strokes, "preserve_colors": "histogram"}),
                          ("style_scale=0.5 (strokes): finer strokes", {"style": strokes, "style_scale": 0.5}),
                          ("style_scale=2 (strokes): larger strokes", {"style": strokes, "style_scale": 2.0})):
        tiles.append((label, fast(photos["astronaut"], **params)))
    sheet = labelled_sheet(tiles, columns=4, gap=3, font_size=11)
    image = Image.fromarray(np.uint8(np.clip(sheet, 0, 1) * 255 + 0.5))
    image.save(path, optimize=True)
    if path.stat().st_size > 300_000:
        image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
            path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB, {image.width}x{image.height})")


# -------------------------------------------------------------------------------------------- main


TITLES = {"speed": "fast-style against style-transfer", "video": "fast-style over video: temporal=flow",
          "init": "style-transfer from the fast-style start (init=fast)", "tiles": "fast-style in tiles"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", choices=SECTIONS, help="run these sections (repeatable)")
    ap.add_argument("--quick", action="store_true", help="small sizes and few steps, to check the harness")
    ap.add_argument("--out", default=str(HERE / "RESULTS-fast-style.md"))
    ap.add_argument("--picture", metavar="PNG", help="only write the docs' picture (docs/fast-style.png)")
    args = ap.parse_args(argv)
    if args.picture:
        picture(Path(args.picture))
        return 0
    cfg = QUICK if args.quick else FULL
    work = Path(tempfile.mkdtemp(prefix="gradfx-bench-fast-"))
    out = Path(args.out)
    text = out.read_text() if out.exists() else "# fast-style: measurements (`python bench/fast_style.py`)\n"
    for name in args.only or SECTIONS:
        started, before = time.time(), load()
        body = globals()[f"section_{name}"](cfg, work)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(started))  # when it started, not when it ended
        header = (f"## {TITLES[name]}\n\n`python bench/fast_style.py --only {name}{' --quick' if args.quick else ''}`"
                  f", started {when}, {(time.time() - started) / 60:.1f} min on a shared 2-core "
                  f"CPU (1-minute load {before} before, {load()} after; seconds are noisy, ratios less so).\n")
        section = header + "\n" + "\n".join(body) + "\n"
        print(section, flush=True)
        pattern = re.compile(rf"## {re.escape(TITLES[name])}\n.*?(?=\n## |\Z)", re.S)
        kept = section.rstrip("\n")
        text = pattern.sub(lambda _, kept=kept: kept, text) if pattern.search(text) else \
            text.rstrip("\n") + "\n\n" + section
        out.write_text(text)
    print(json.dumps({"work": str(work), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
