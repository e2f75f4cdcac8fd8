"""Package discovery that cannot miss a sub-package or a data file.

The three source folders install as sub-packages of one import package, ``gradfx``: ``engine/`` is
``gradfx.engine``, ``plugins/`` is ``gradfx.plugins``, ``tui/`` is ``gradfx.tui``. setuptools' automatic discovery
knows no prefix for a mapped folder, so pyproject.toml alone can only list packages by hand, and a hand-written list
once left ``gradfx.tui.commands`` out of every wheel. Here each folder's packages are found with ``find_namespace_packages``
and renamed under ``gradfx``, and every other file in them is package data. Metadata stays in pyproject.toml;
tests/test_packaging.py builds the wheel and checks it holds every file of the three folders.
"""

from __future__ import annotations

import os
import re

from setuptools import find_namespace_packages, setup

#: source folder -> the import package it installs as
ROOTS = {"engine": "gradfx.engine", "plugins": "gradfx.plugins", "tui": "gradfx.tui"}
#: ``python -m gradfx``: ``gradfx`` stays a namespace package (no ``__init__``) with only this ``__main__``
LAUNCHER = "tui/launcher"


def discover() -> tuple[list[str], dict[str, str], dict[str, list[str]]]:
    """The packages, their folders and their data files."""
    package_dir = {"gradfx": LAUNCHER}
    by_folder = {}  # "tui/commands" -> "gradfx.tui.commands"
    for folder, name in ROOTS.items():
        package_dir[name] = folder
        by_folder[folder] = name
        # namespace discovery: a folder of data files (plugins/recipes) is a package of its own too
        for sub in find_namespace_packages(folder, exclude=["launcher", "*__pycache__*"]):
            by_folder[os.path.join(folder, *sub.split("."))] = f"{name}.{sub}"
    package_data: dict[str, list[str]] = {}
    for folder in ROOTS:  # a file that is not Python belongs to the deepest package folder above it
        for here, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if os.path.join(here, d) != LAUNCHER and d != "__pycache__")
            owner = here
            while owner not in by_folder:
                owner = os.path.dirname(owner)
            for file in sorted(files):
                if not file.endswith((".py", ".pyc", ".pyo")):
                    rel = os.path.relpath(os.path.join(here, file), owner).replace(os.sep, "/")
                    package_data.setdefault(by_folder[owner], []).append(rel)
    return ["gradfx", *by_folder.values()], package_dir, package_data


def long_description() -> str:
    """The README, with links and pictures relative to the repository made plain text for a package index.

    A package index shows the README without the repository around it, so ``[the guide](docs/plugins.md)``
    would be a broken link there: it becomes ``the guide (docs/plugins.md in the source distribution)``.
    """
    with open("README.md", encoding="utf-8") as f:
        text = f.read()
    relative = r"(?!https?://|#|mailto:)([^)\s]+)"
    text = re.sub(r"!\[([^\]]*)\]\(" + relative + r"\)", r"*(picture: \2 in the source distribution)*", text)
    return re.sub(r"\[([^\]]+)\]\(" + relative + r"\)", r"\1 (`\2` in the source distribution)", text)


packages, package_dir, package_data = discover()
setup(
    packages=packages,
    package_dir=package_dir,
    package_data=package_data,
    long_description=long_description(),
    long_description_content_type="text/markdown",
)
