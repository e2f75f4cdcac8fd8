"""Peak memory of the ``deepdream`` effect against image size, tiled (not a test).

    python bench/deepdream_memory.py                        # 512 and 4096 px, default tile 512
    python bench/deepdream_memory.py --sizes 512,2048,4096 --steps 2 --octaves 2

Each size runs in a fresh subprocess (so one run's allocations cannot hide another's) on seeded random
InceptionV3 weights and a generated image, and reports the process's peak resident set size
(``ru_maxrss``). The claim checked: with tiles, the peak at 4096 px stays within 1.5x of the peak at 512 px,
whereas the Keras example's whole-image loop grows with the image (about 1 GB at 512 px to 4 GB at 2048 px).
Few steps suffice: the peak is reached in the first step of the largest octave.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time


def _photo(size: int, folder: str) -> str:
    """A size x size PNG of smooth colour waves; the effect loads it from disk, as a user's photo."""
    import numpy as np
    from PIL import Image

    y, x = np.ogrid[0:size, 0:size]
    img = np.empty((size, size, 3), np.uint8)
    for k in range(3):  # channel by channel, to keep the temporaries small
        wave = 0.5 + 0.25 * np.sin(x * (k + 1) * 0.065 + k) + 0.2 * np.cos(y * (3 - k) * 0.065)
        img[..., k] = (wave * 255).astype(np.uint8)
    path = os.path.join(folder, f"waves-{size}.png")
    Image.fromarray(img).save(path)
    return path


def child(size: int, steps: int, octaves: int, tile: int) -> dict:
    os.environ.setdefault("GRADFX_OFFLINE", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tempfile

    from gradfx.engine import run

    with tempfile.TemporaryDirectory() as folder:
        photo = _photo(size, folder)
        started = time.perf_counter()
        result = run("deepdream", photo,
                     params={"steps": steps, "octaves": octaves, "tile": tile, "max_loss": 0.0},
                     weights="random", seed=0)
    return {
        "size": size,
        "tile": tile,
        "steps": result.report["steps"],
        "octaves": octaves,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="512,4096", help="image sizes in px, comma separated")
    ap.add_argument("--steps", type=int, default=2, help="steps per octave")
    ap.add_argument("--octaves", type=int, default=2)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.octaves, args.tile)))
        return 0
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        cmd = [sys.executable, __file__, "--child", str(size), "--steps", str(args.steps), "--octaves",
               str(args.octaves), "--tile", str(args.tile)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"size {size}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            return 1
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{row['size']:>5} px  tile {row['tile']:>4}  {row['steps']:>3} steps  {row['seconds']:>7} s  "
              f"peak RSS {row['peak_rss_mb']:>8} MB", flush=True)
    if len(rows) > 1:
        ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
        print(f"peak at {rows[-1]['size']} px / peak at {rows[0]['size']} px = {ratio:.2f}x "
              f"({'within' if ratio <= 1.5 else 'above'} 1.5x)  [{platform.machine()}, {os.cpu_count()} cpus]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
