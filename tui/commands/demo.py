"""``gradfx demo``: the built-in recipes on built-in sample images (work in progress)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the built-in recipes on built-in sample images")
    p.add_argument("-o", "--output", default="gradfx-demo", help="output folder (default ./gradfx-demo)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    print("gradfx demo: not written yet")
    return 1
