"""The torch-free checkpoint reader (engine/models/index/torchzip) on checkpoints built by hand with
``fake_torch`` (no torch needed): the zip, TorchScript and legacy forms, strides and offsets, and everything
it must refuse: globals outside its allow-list, BUILD on an allowed global, damaged or alien files."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import fake_torch as fake
import numpy as np
import pytest

from gradfx.engine.models.index.errors import ArchiveError as TorchArchiveError
from gradfx.engine.models.index.errors import ForbiddenGlobalError
from gradfx.engine.models.index.torchzip import ScriptObject, _RestrictedUnpickler, read_tensors

ARRAYS = {
    "conv.weight": np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3) / 7,
    "conv.bias": np.array([0.5, -1.25], dtype=np.float16),
    "bn.num_batches_tracked": np.array(12345678901, dtype=np.int64),
    "steps": np.array([-1, 2, 3], dtype=np.int64),
}


def _assert_same(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(actual) == list(expected)
    for name, array in expected.items():
        assert (actual[name].dtype, actual[name].shape) == (array.dtype, array.shape), name
        np.testing.assert_array_equal(actual[name], array, err_msg=name)


@pytest.mark.parametrize("byteorder", ["little", "big", None])
def test_zip_state_dict_round_trip(byteorder: str | None) -> None:
    tree, storages = fake.contiguous(ARRAYS)
    _assert_same(read_tensors(io.BytesIO(fake.state_dict_zip(tree, storages, byteorder=byteorder))), ARRAYS)


def test_legacy_state_dict_round_trip() -> None:
    tree, storages = fake.contiguous(ARRAYS)
    _assert_same(read_tensors(io.BytesIO(fake.legacy_pth(tree, storages))), ARRAYS)


def test_path_and_unseekable_file(tmp_path: Path) -> None:
    tree, storages = fake.contiguous(ARRAYS)
    path = tmp_path / "model.pth"
    path.write_bytes(fake.state_dict_zip(tree, storages))
    _assert_same(read_tensors(path), ARRAYS)
    _assert_same(read_tensors(str(path)), ARRAYS)
    read_end, write_end = os.pipe()
    with open(write_end, "wb") as sink:
        sink.write(fake.legacy_pth(tree, storages))
    with open(read_end, "rb") as pipe:
        _assert_same(read_tensors(pipe), ARRAYS)


def test_strides_offsets_and_shared_storage() -> None:
    base = np.arange(24, dtype=np.float32)
    storages = {"s": base}
    tree = OrderedDict(
        matrix=fake.FakeTensor("s", (4, 6), (6, 1)),
        transposed=fake.FakeTensor("s", (6, 4), (1, 6)),
        column=fake.FakeTensor("s", (4,), (6,), offset=2),
        broadcast=fake.FakeTensor("s", (3, 2), (0, 1), offset=22),
        scalar=fake.FakeTensor("s", (), (), offset=5),
        empty=fake.FakeTensor("s", (0, 3), (3, 1)),
    )
    matrix = base.reshape(4, 6)
    expected = {"matrix": matrix, "transposed": matrix.T, "column": matrix[:, 2],
                "broadcast": np.broadcast_to(base[22:24], (3, 2)), "scalar": np.array(5, np.float32),
                "empty": np.zeros((0, 3), np.float32)}
    for data in (fake.state_dict_zip(tree, storages), fake.legacy_pth(tree, storages)):
        tensors = read_tensors(io.BytesIO(data))
        _assert_same(tensors, expected)
        assert all(array.flags.c_contiguous and array.flags.writeable for array in tensors.values())


def test_legacy_storage_view_is_refused() -> None:
    storages = {"s": np.arange(10, dtype=np.float64)}
    tree = {"tail": fake.FakeTensor("s", (2, 2), (2, 1), offset=1, view=fake.StorageView(offset=5, size=5))}
    with pytest.raises(TorchArchiveError, match="legacy storage view"):
        read_tensors(io.BytesIO(fake.legacy_pth(tree, storages)))


def test_torchscript_modules_become_dotted_names() -> None:
    weight, beta = np.ones((4, 3, 1, 1), np.float32), np.full(4, 0.5, np.float32)
    storages = {"0": weight.ravel(), "1": beta}
    kernel = fake.Call("torch.jit._pickle", "build_intlist", ([3, 3],))
    conv = fake.FakeModule("fake.Conv2dLayer", {"weight": fake.FakeTensor("0", (4, 3, 1, 1), (3, 1, 1, 1)),
                                                "beta": fake.FakeTensor("1", (4,), (1,)), "training": False,
                                                "stride": 2, "kernel": kernel})
    layers = fake.FakeModule("torch.nn.modules.container.Sequential", {"conv": conv})
    net = fake.FakeModule("fake.Net", {"training": False, "_is_full_backward_hook": None, "layers": layers})
    archive = fake.state_dict_zip(fake.FakeModule("wrap.Wrap", {"net": net}), storages, "out_jit_module")
    tensors = read_tensors(io.BytesIO(archive))
    _assert_same(tensors, {"net.layers.conv.weight": weight, "net.layers.conv.beta": beta})


def test_script_objects_are_inert() -> None:
    data = fake.pickle_bytes(fake.FakeModule("evil.Thing", {"__class__": "x", "attributes": 3}))
    obj = _RestrictedUnpickler(io.BytesIO(data)).load()
    assert isinstance(obj, ScriptObject)
    assert obj.qualname == "__torch__.evil.Thing"
    assert obj.attributes == {"__class__": "x", "attributes": 3}
    assert type(obj).__mro__[1] is ScriptObject


@pytest.mark.parametrize("payload", [
    fake.pickle_bytes(fake.Call("os", "system", ("echo pwned",))),
    fake.pickle_bytes({"weight": fake.Call("builtins", "eval", ("1 + 1",))}),
    pickle.dumps(print, protocol=4),  # STACK_GLOBAL
    fake.pickle_bytes(fake.Call("torch", "load", ("x",))),
    fake.pickle_bytes(fake.Call("torch._utils", "_rebuild_qtensor", ())),
])
def test_forbidden_globals_are_refused(payload: bytes) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    with pytest.raises(ForbiddenGlobalError, match="not allowed"):
        read_tensors(io.BytesIO(buffer.getvalue()))


def test_allowed_globals_cannot_be_modified() -> None:
    # GLOBAL torch._utils._rebuild_tensor_v2, then BUILD (None, {"__defaults__": ()}): a setattr on it
    payload = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x0c\x00\x00\x00__defaults__)s\x86b."
    with pytest.raises(TorchArchiveError, match="set attributes of an allowed global"):
        read_tensors(io.BytesIO(_zip({"archive/data.pkl": payload})))


def test_forbidden_global_in_legacy_file() -> None:
    data = fake.legacy_pth(fake.Call("subprocess", "call", (["true"],)), {})
    with pytest.raises(ForbiddenGlobalError, match="subprocess.call"):
        read_tensors(io.BytesIO(data))


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


_TREE, _STORAGES = fake.contiguous({"w": np.arange(6, dtype=np.float32)})
_GOOD = fake.state_dict_zip(_TREE, _STORAGES)


_NOT_CHECKPOINTS = [
    (b"", "neither a zip"),
    (b"hello, not a checkpoint", "neither a zip"),
    (pickle.dumps({"a": 1}, protocol=2), "magic number"),
    (b"\x80\x02garbage", "unreadable pickle"),
    (_zip({"README": b"x"}), "exactly one"),
    (_zip({"a/data.pkl": b"\x80\x02}.", "b/data.pkl": b"\x80\x02}."}), "exactly one"),
    (_zip({"archive/data.pkl": fake.pickle_bytes(_TREE, _STORAGES)}), "missing"),
    (_zip({"archive/data.pkl": fake.pickle_bytes(_TREE, _STORAGES), "archive/data/0": b"\0" * 20}),
     "has 20 bytes"),
    (_zip({"archive/data.pkl": fake.pickle_bytes({"w": fake.FakeTensor("0", (4,), (2,))}, _STORAGES),
           "archive/data/0": b"\0" * 24}), "outside its storage"),
    (_zip({"archive/data.pkl": fake.pickle_bytes({"w": fake.FakeTensor("0", (2,), (-1,), 3)}, _STORAGES),
           "archive/data/0": b"\0" * 24}), "bad tensor geometry"),
    (_zip({"archive/data.pkl": fake.pickle_bytes(fake.Call("torch._utils", "_rebuild_tensor_v2",
                                                           ("x", 0, (1,), (1,))))}), "not from a storage"),
    (_GOOD[: len(_GOOD) // 2], "neither a zip"),
    (fake.legacy_pth(_TREE, _STORAGES)[:-4], "ends inside storage"),
]


# ids of their own: a zip's bytes hold the time it was made, and pytest-xdist's workers must collect the same ids
@pytest.mark.parametrize(("data", "message"), _NOT_CHECKPOINTS,
                         ids=[f"{i}-{message}" for i, (_, message) in enumerate(_NOT_CHECKPOINTS)])
def test_not_a_checkpoint(data: bytes, message: str) -> None:
    with pytest.raises(TorchArchiveError, match=message):
        read_tensors(io.BytesIO(data))


def test_unsupported_storage_type_is_refused() -> None:
    with pytest.raises(ForbiddenGlobalError, match="torch.BFloat16Storage"):
        payload = fake.pickle_bytes(fake.Call("torch", "BFloat16Storage"))
        read_tensors(io.BytesIO(_zip({"archive/data.pkl": payload})))


def test_a_pickle_declaring_huge_storages_is_refused_before_any_is_read() -> None:
    storages = {"0": np.zeros(1, np.float32)}
    huge = fake.pickle_bytes({"w": fake.FakeTensor("0", (1,), (1,))}, storages).replace(
        b"J\x01\x00\x00\x00tQ", b"J\xff\xff\xff\x7ftQ")  # the storage's element count: 2**31 - 1 floats
    with pytest.raises(TorchArchiveError, match="GiB"):
        read_tensors(io.BytesIO(_zip({"archive/data.pkl": huge, "archive/data/0": b"\0" * 4})))
