"""The wheel users install holds every module and data file of the source tree, and its metadata reads right.

The editable install that development uses maps whole folders, so it cannot show a file missing from the
wheel; once, every released install lacked ``gradfx.tui.commands``. These tests build the real wheel.
"""

from __future__ import annotations

import email
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: source folder -> where its files land in the wheel
FOLDERS = {"engine": "gradfx/engine", "plugins": "gradfx/plugins", "tui": "gradfx/tui"}
LAUNCHER = ROOT / "tui" / "launcher" / "__main__.py"


def source_files() -> set[str]:
    """Every file of the three source folders, as the wheel should name it."""
    expected = set()
    for folder, target in FOLDERS.items():
        for path in (ROOT / folder).rglob("*"):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
                continue
            if path == LAUNCHER:
                expected.add("gradfx/__main__.py")
            else:
                expected.add(f"{target}/{path.relative_to(ROOT / folder).as_posix()}")
    return expected


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = out.glob("gradfx-*.whl")
    with zipfile.ZipFile(path) as zf:
        yield zf


def test_the_wheel_holds_every_module_and_data_file_of_the_source_tree(wheel):
    names = set(wheel.namelist())
    missing = sorted(source_files() - names)
    assert not missing, f"left out of the wheel: {missing}"
    assert "gradfx/tui/commands/run.py" in names  # the sub-package a hand-written list once missed
    assert "gradfx/plugins/recipes/style-dream.toml" in names and "gradfx/tui/app.tcss" in names


def test_the_wheel_installs_only_under_gradfx(wheel):
    stray = [n for n in wheel.namelist() if not n.startswith(("gradfx/", "gradfx-"))]
    assert not stray
    # gradfx stays a namespace of its three parts: no gradfx/__init__.py to shadow them
    assert "gradfx/__init__.py" not in wheel.namelist()


def test_the_wheel_metadata_is_what_a_package_index_shows(wheel):
    (meta_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    meta = email.message_from_bytes(wheel.read(meta_name))
    assert meta["Name"] == "gradfx" and meta["Version"] == metadata.version("gradfx")
    assert meta["License-Expression"] == "Apache-2.0"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel.namelist())
    classifiers = meta.get_all("Classifier")
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Description-Content-Type"] == "text/markdown"
    description = meta.get_payload()
    assert description.startswith("# gradfx")
    # no link or picture relative to the repository: they break on a package index
    assert "](docs/" not in description and "](bench/" not in description
    assert "`docs/plugins.md` in the source distribution" in description


def test_python_dash_m_gradfx_is_the_gradfx_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "gradfx", "--version"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"gradfx {metadata.version('gradfx')}"


def test_the_version_has_one_source():
    from gradfx.engine import __version__

    assert __version__ == metadata.version("gradfx")
    for path in [*ROOT.glob("engine/*.py"), *ROOT.glob("tui/**/*.py"), *ROOT.glob("plugins/*.py")]:
        assert f'"{__version__}"' not in path.read_text(encoding="utf-8"), f"{path} spells out the version"
