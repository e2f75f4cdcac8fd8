"""Build fake PyTorch checkpoints by hand, without torch, for tests of the reader (engine/models/index/torchzip).

The pickles are written opcode by opcode (protocol 2, as ``torch.save`` writes them), so any global can be
named without being importable here: ``torch._utils._rebuild_tensor_v2``, ``torch.FloatStorage``, a
TorchScript ``__torch__.*`` class, or a forbidden one such as ``os.system``.

Describe the object with plain dicts, lists, tuples, strings, numbers and the markers below, then write it:

* :func:`state_dict_zip` — the zip form of ``torch.save`` (PyTorch >= 1.6);
* :func:`legacy_pth` — the legacy form (PyTorch < 1.6);
* :func:`contiguous` — turn ``{name: array}`` into an object plus storages, one storage per array;
* :func:`torchscript_zip` — ``{dotted.name: array}`` as a TorchScript-style archive of nested modules.

A :class:`FakeModule` inside the object makes the zip a TorchScript-style archive.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from gradfx.engine.models.index.torchzip import LEGACY_MAGIC, LEGACY_PROTOCOL, STORAGE_DTYPES

__all__ = ["Call", "FakeModule", "FakeTensor", "StorageView", "contiguous", "legacy_pth", "pickle_bytes",
           "state_dict_zip", "torchscript_zip"]

_STORAGE_NAMES = {dtype: name for name, dtype in STORAGE_DTYPES.items()}


@dataclass(frozen=True)
class StorageView:
    """A storage view (PyTorch < 0.4 legacy files only): ``size`` elements from element ``offset``."""

    offset: int
    size: int


@dataclass(frozen=True)
class FakeTensor:
    """A tensor of the storage ``storage`` (a key into the storages mapping) with the given geometry."""

    storage: str
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int = 0
    view: StorageView | None = None


@dataclass(frozen=True)
class FakeModule:
    """A TorchScript module object: ``__torch__.<qualname>`` with these attributes."""

    qualname: str
    attributes: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """``module.name(*args)`` as a pickle REDUCE, e.g. ``Call("os", "system", ("echo hi",))``."""

    module: str
    name: str
    args: tuple[object, ...] = ()


class _Writer:
    """Writes one protocol-2 pickle, resolving storage keys to their arrays' types and sizes."""

    def __init__(self, storages: Mapping[str, np.ndarray], legacy: bool) -> None:
        self.storages = storages
        self.legacy = legacy
        self.out = bytearray(b"\x80\x02")

    def finish(self, value: object) -> bytes:
        """The complete pickle of ``value``."""
        self.write(value)
        self.out += b"."
        return bytes(self.out)

    def write(self, value: object) -> None:
        """Append the opcodes that build ``value``."""
        if value is None:
            self.out += b"N"
        elif isinstance(value, bool):
            self.out += b"\x88" if value else b"\x89"
        elif isinstance(value, int):
            self.out += b"J" + struct.pack("<i", value)
        elif isinstance(value, float):
            self.out += b"G" + struct.pack(">d", value)
        elif isinstance(value, str):
            raw = value.encode("utf-8")
            self.out += b"X" + struct.pack("<I", len(raw)) + raw
        elif isinstance(value, tuple):
            self._items(value, b"(", b"t")
        elif isinstance(value, list):
            self._items(value, b"](", b"e")
        elif isinstance(value, OrderedDict):
            self.write(Call("collections", "OrderedDict"))
            self._items([item for pair in value.items() for item in pair], b"(", b"u")  # SETITEMS
        elif isinstance(value, dict):
            self._dict(value)
        elif isinstance(value, FakeTensor):
            self._tensor(value)
        elif isinstance(value, FakeModule):
            self._global("__torch__", value.qualname)
            self.out += b")\x81"  # EMPTY_TUPLE NEWOBJ
            self._dict(value.attributes)
            self.out += b"b"  # BUILD
        elif isinstance(value, Call):
            self._global(value.module, value.name)
            self.write(value.args)
            self.out += b"R"
        else:
            raise TypeError(f"cannot write {type(value).__name__} into a fake checkpoint")

    def _items(self, items: tuple[object, ...] | list[object], opening: bytes, closing: bytes) -> None:
        self.out += opening
        for item in items:
            self.write(item)
        self.out += closing

    def _dict(self, mapping: dict[object, object]) -> None:
        """A plain dict (MARK ... DICT), as a TorchScript module's state is written."""
        self._items([item for pair in mapping.items() for item in pair], b"(", b"d")

    def _global(self, module: str, name: str) -> None:
        module, _, name = f"{module}.{name}".rpartition(".")
        self.out += b"c" + f"{module}\n{name}\n".encode()

    def _tensor(self, tensor: FakeTensor) -> None:
        array = self.storages[tensor.storage]
        self._global("torch._utils", "_rebuild_tensor_v2")
        self.out += b"(("  # MARK (args) MARK (persistent id)
        self.write("storage")
        self._global("torch", _STORAGE_NAMES[array.dtype.newbyteorder("=")])
        self.write(tensor.storage)
        self.write("cpu")
        self.write(array.size)
        if self.legacy:  # the legacy persistent id always ends with the view, None for a whole storage
            view = tensor.view and (f"{tensor.storage}_view", tensor.view.offset, tensor.view.size)
            self.write(view)
        elif tensor.view is not None:
            raise ValueError("storage views exist only in the legacy format")
        self.out += b"tQ"  # TUPLE BINPERSID
        self.write(tensor.offset)
        self.write(tensor.shape)
        self.write(tensor.stride)
        self.write(False)
        self.write(Call("collections", "OrderedDict"))
        self.out += b"tR"  # TUPLE REDUCE


def pickle_bytes(value: object, storages: Mapping[str, np.ndarray] | None = None,
                 legacy: bool = False) -> bytes:
    """A protocol-2 pickle of ``value``; tensors refer to ``storages`` by key (legacy: with a view field)."""
    return _Writer(storages or {}, legacy).finish(value)


def contiguous(arrays: Mapping[str, np.ndarray]) -> tuple[OrderedDict[str, object], dict[str, np.ndarray]]:
    """A state dict (an OrderedDict) of contiguous tensors, one storage per array keyed ``"0"``, ``"1"``..."""
    tree: OrderedDict[str, object] = OrderedDict()
    storages: dict[str, np.ndarray] = {}
    for index, (name, array) in enumerate(arrays.items()):
        key = str(index)
        dense = np.array(array, order="C")  # np.ascontiguousarray would turn a 0-d array into 1-d
        storages[key] = dense.ravel()
        tree[name] = FakeTensor(key, dense.shape, tuple(s // dense.itemsize for s in dense.strides))
    return tree, storages


def state_dict_zip(value: object, storages: Mapping[str, np.ndarray], archive_name: str = "archive",
                   byteorder: str | None = "little") -> bytes:
    """The zip form of ``torch.save``: ``<archive_name>/data.pkl``, ``data/<key>`` and a byte order record.

    ``byteorder=None`` leaves the record out, as PyTorch before 1.10 did.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{archive_name}/data.pkl", pickle_bytes(value, storages))
        if byteorder is not None:
            archive.writestr(f"{archive_name}/byteorder", byteorder)
        for key, array in storages.items():
            archive.writestr(f"{archive_name}/data/{key}", _raw(array, byteorder or "little"))
        archive.writestr(f"{archive_name}/version", "3\n")
    return buffer.getvalue()


def torchscript_zip(arrays: Mapping[str, np.ndarray], archive_name: str = "archive") -> bytes:
    """A TorchScript-style archive: each dotted name's parents become nested ``__torch__`` module objects."""
    flat, storages = contiguous(arrays)
    root: dict[str, object] = {}
    for name, tensor in flat.items():
        *parents, leaf = name.split(".")
        node = root
        for part in parents:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[leaf] = tensor
    return state_dict_zip(_module(root), storages, archive_name)


def _module(node: dict[str, object]) -> FakeModule:
    """Nested dicts as nested modules, each with the ``training`` flag TorchScript always stores."""
    attributes: dict[str, object] = {"training": False}
    for key, value in node.items():
        attributes[key] = _module(value) if isinstance(value, dict) else value
    return FakeModule("fake.Module", attributes)


def legacy_pth(value: object, storages: Mapping[str, np.ndarray]) -> bytes:
    """The legacy form of ``torch.save``: header pickles, the object, the key list, then the storages.

    Storages are always little-endian in this form, whatever machine wrote them.
    """
    sys_info = {"protocol_version": LEGACY_PROTOCOL, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 8}}
    parts = [pickle.dumps(LEGACY_MAGIC, protocol=2), pickle.dumps(LEGACY_PROTOCOL, protocol=2),
             pickle.dumps(sys_info, protocol=2), pickle_bytes(value, storages, legacy=True),
             pickle.dumps(list(storages), protocol=2)]
    for array in storages.values():
        parts.append(struct.pack("<q", array.size) + _raw(array, "little"))
    return b"".join(parts)


def _raw(array: np.ndarray, byteorder: str) -> bytes:
    """An array's elements in the given byte order."""
    return array.astype(array.dtype.newbyteorder("<" if byteorder == "little" else ">")).tobytes()
