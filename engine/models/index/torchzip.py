"""Read the tensors of a PyTorch checkpoint without torch and without running any code from the file.

Three on-disk forms are understood:

* the zip archive that ``torch.save`` writes since PyTorch 1.6 (``<name>/data.pkl`` plus one raw file per
  storage, ``<name>/data/<key>``), whether it holds a plain state dict or anything else made of dicts, lists
  and tensors;
* a TorchScript archive (``torch.jit.save``): the same zip layout, with the parameters stored as attributes
  of ``__torch__.*`` module objects in ``data.pkl``;
* the legacy (PyTorch < 1.6) serialization: five pickles in a row (magic number, protocol version, system
  info, the object, the list of storage keys) followed by each storage as an int64 element count and its raw
  bytes.

The pickle is read by a restricted unpickler: it resolves only the handful of globals needed to rebuild
tensors (``torch._utils._rebuild_tensor_v2``, the typed storage classes, ``collections.OrderedDict``, the
TorchScript list builders) and turns every ``__torch__.*`` class into an inert :class:`ScriptObject` that only
records its attributes. Any other global raises :class:`ForbiddenGlobalError`; nothing is imported or
executed. Tensors become NumPy arrays in native byte order, honouring storage offsets and strides, which are
bounds-checked first; storage sizes are checked before a storage is read. The allowed callables are handed
out wrapped, so that pickle's BUILD opcode cannot set attributes on them for the rest of the process.

Errors are :class:`~.errors.ArchiveError` (damaged or alien input) and :class:`~.errors.ForbiddenGlobalError`
(a global outside the allow-list). Verified bit for bit against ``torch.jit.load`` / ``torch.load`` on the
catalogue's checkpoints (``/work/scratch/ports/NOTES.md``).

The result is flat: nested dicts, lists and TorchScript modules are joined with dots, e.g.
``"layer1.0.conv1.weight"`` or, for a TorchScript module, ``"net.layers.conv.weight"``.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from .errors import ArchiveError, ForbiddenGlobalError

__all__ = ["LEGACY_MAGIC", "LEGACY_PROTOCOL", "STORAGE_DTYPES", "ScriptObject", "read_tensors"]

#: the number the legacy format's first pickle holds
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
#: the protocol version the legacy format's second pickle holds
LEGACY_PROTOCOL = 1001
#: the most tensor bytes one checkpoint may declare (a guard against a pickle that names huge storages)
MAX_TENSOR_BYTES = 4 << 30

#: ``torch.<Name>Storage`` -> element type of its raw bytes
STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype(np.float32),
    "HalfStorage": np.dtype(np.float16),
    "DoubleStorage": np.dtype(np.float64),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
}


class ScriptObject:
    """An inert stand-in for a TorchScript ``__torch__.*`` object: its class name and its attributes."""

    qualname = "__torch__"

    def __init__(self) -> None:
        self.attributes: dict[str, Any] = {}

    def __setstate__(self, state: object) -> None:
        """Keep the pickled state; a non-dict state is kept under the key ``"state"``."""
        self.attributes = dict(state) if isinstance(state, dict) else {"state": state}

    def __repr__(self) -> str:
        return f"<ScriptObject {self.qualname} {sorted(self.attributes)}>"


@dataclass(frozen=True)
class _StorageRef:
    """A storage named by the pickle: its key in the archive, element type and size (in elements)."""

    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """A tensor named by the pickle, to be cut out of its storage once the storages are read."""

    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage: object, storage_offset: object, size: object, stride: object,
                       *_ignored: object) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: record where the tensor lives."""
    if not isinstance(storage, _StorageRef):
        raise ArchiveError(f"tensor rebuilt from {type(storage).__name__}, not from a storage")
    return _TensorRef(storage, _as_int(storage_offset), _as_ints(size), _as_ints(stride))


def _rebuild_parameter(data: object, *_ignored: object) -> object:
    """Stand-in for ``torch._utils._rebuild_parameter``: a parameter is its tensor."""
    return data


def _identity(value: object, *_ignored: object) -> object:
    """Stand-in for the TorchScript list builders and ``restore_type_tag``, which return their argument."""
    return value


class _Global:
    """An allow-listed global as the unpickler hands it out: callable, but closed to pickle's BUILD opcode.

    Without this wrapper a pickle could BUILD onto the shared function or class it was given and set its
    attributes for the rest of the process.
    """

    __slots__ = ("_function",)

    def __init__(self, function: Callable[..., object]) -> None:
        self._function = function

    def __call__(self, *args: object) -> object:
        return self._function(*args)

    def __setstate__(self, state: object) -> None:
        raise ArchiveError("the pickle tries to set attributes of an allowed global")


_ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., object]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.jit._pickle", "build_intlist"): _identity,
    ("torch.jit._pickle", "build_doublelist"): _identity,
    ("torch.jit._pickle", "build_boollist"): _identity,
    ("torch.jit._pickle", "build_tensorlist"): _identity,
    ("torch.jit._pickle", "restore_type_tag"): _identity,
}


@dataclass(frozen=True)
class _StorageType:
    """What ``torch.<Name>Storage`` resolves to inside the restricted unpickler."""

    name: str
    dtype: np.dtype


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed globals and records the storages the pickle names."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.storages: dict[str, _StorageRef] = {}
        self._script_classes: dict[str, type[ScriptObject]] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return self._script_class(f"{module}.{name}")
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name, STORAGE_DTYPES[name])
        if (module, name) in _ALLOWED_GLOBALS:
            return _Global(_ALLOWED_GLOBALS[(module, name)])
        raise ForbiddenGlobalError(f"the pickle asks for the global {module}.{name}, which is not allowed "
                                   "(only tensors, storages, dicts, lists and TorchScript attributes are "
                                   "read)")

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise ArchiveError(f"unsupported persistent id {pid!r:.80} (only tensor storages are read)")
        storage_type, key, numel = pid[1], str(pid[2]), _as_int(pid[4])
        if not isinstance(storage_type, _StorageType):
            raise ArchiveError(f"storage {key} has no known storage type: {storage_type!r:.80}")
        if len(pid) > 5 and pid[5] is not None:  # written only by PyTorch < 0.4
            raise ArchiveError(f"storage {key} is a legacy storage view, which is not supported")
        ref = _StorageRef(key, storage_type.dtype, numel)
        if self.storages.setdefault(key, ref) != ref:
            raise ArchiveError(f"storage {key} is described twice, differently")
        return ref

    def _script_class(self, qualname: str) -> type[ScriptObject]:
        """An inert ScriptObject subclass named after the TorchScript class, one per name."""
        if qualname not in self._script_classes:
            name = qualname.rsplit(".", 1)[-1]
            self._script_classes[qualname] = type(name, (ScriptObject,), {"qualname": qualname})
        return self._script_classes[qualname]


def read_tensors(source: str | os.PathLike[str] | BinaryIO) -> dict[str, np.ndarray]:
    """Every tensor in a PyTorch checkpoint (zip, TorchScript or legacy), by dotted name, as NumPy arrays.

    ``source`` is a path or a binary file object. Raises :class:`ArchiveError` for anything that is not
    such a checkpoint, and :class:`ForbiddenGlobalError` when its pickle asks for any other Python global.
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as file:
            return _read_file(file)
    return _read_file(source if source.seekable() else io.BytesIO(source.read()))


def _read_file(file: BinaryIO) -> dict[str, np.ndarray]:
    """Dispatch on the file's form: a zip archive or the legacy pickle sequence."""
    if zipfile.is_zipfile(file):
        file.seek(0)
        with zipfile.ZipFile(file) as archive:
            return _read_zip(archive)
    file.seek(0)
    if file.read(1) != pickle.PROTO:
        raise ArchiveError("not a PyTorch checkpoint: neither a zip archive nor a legacy pickle file")
    file.seek(0)
    return _read_legacy(file)


def _read_zip(archive: zipfile.ZipFile) -> dict[str, np.ndarray]:
    """Read ``<name>/data.pkl`` and the storages it names from ``<name>/data/<key>``."""
    pickles = [name for name in archive.namelist() if name.count("/") == 1 and name.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise ArchiveError(f"zip archive without exactly one <name>/data.pkl (found {len(pickles)})")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = _zip_byteorder(archive, prefix)
    tree, storages = _unpickle(io.BytesIO(archive.read(pickles[0])))
    _check_total(storages)
    arrays = {key: _zip_storage(archive, f"{prefix}data/{key}", ref, byteorder)
              for key, ref in storages.items()}
    return _materialize(tree, arrays)


def _zip_byteorder(archive: zipfile.ZipFile, prefix: str) -> str:
    """The storages' byte order, from the optional ``<name>/byteorder`` record (little when absent)."""
    try:
        order = archive.read(f"{prefix}byteorder").decode("ascii").strip()
    except KeyError:
        return "little"
    if order not in ("little", "big"):
        raise ArchiveError(f"unknown byte order record {order!r:.20}")
    return order


def _zip_storage(archive: zipfile.ZipFile, member: str, ref: _StorageRef, byteorder: str) -> np.ndarray:
    """One storage's raw file as a 1-D native-order array, its size checked before it is read."""
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise ArchiveError(f"storage file {member} is missing") from None
    expected = ref.numel * ref.dtype.itemsize
    if info.file_size != expected:
        raise ArchiveError(f"storage file {member} has {info.file_size} bytes, expected {expected}")
    return _storage_array(archive.read(member), ref.dtype, byteorder)


def _read_legacy(file: BinaryIO) -> dict[str, np.ndarray]:
    """Read the legacy form: magic, protocol, system info, object, storage keys, then the storages."""
    if _unpickle_plain(file) != LEGACY_MAGIC:
        raise ArchiveError("not a PyTorch checkpoint: a pickle without the legacy torch magic number")
    protocol, _sys_info = _unpickle_plain(file), _unpickle_plain(file)
    if protocol != LEGACY_PROTOCOL:
        raise ArchiveError(f"unsupported legacy torch protocol {protocol!r:.20}")
    tree, storages = _unpickle(file)
    _check_total(storages)
    keys = _unpickle_plain(file)
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(storages):
        raise ArchiveError("the legacy storage key list does not match the storages the pickle names")
    arrays = {str(key): _legacy_storage(file, storages[str(key)]) for key in keys}
    return _materialize(tree, arrays)


def _legacy_storage(file: BinaryIO, ref: _StorageRef) -> np.ndarray:
    """One legacy storage: a little-endian int64 element count, then that many little-endian elements."""
    header = file.read(8)
    if len(header) != 8:
        raise ArchiveError(f"file ends before storage {ref.key}")
    (numel,) = struct.unpack("<q", header)
    if numel != ref.numel:
        raise ArchiveError(f"storage {ref.key} holds {numel} elements, the pickle says {ref.numel}")
    raw = file.read(numel * ref.dtype.itemsize)
    if len(raw) != numel * ref.dtype.itemsize:
        raise ArchiveError(f"file ends inside storage {ref.key}")
    return _storage_array(raw, ref.dtype, "little")


def _check_total(storages: Mapping[str, _StorageRef]) -> None:
    """Refuse a checkpoint whose storages add up to more than :data:`MAX_TENSOR_BYTES` before reading any."""
    total = sum(ref.numel * ref.dtype.itemsize for ref in storages.values())
    if total > MAX_TENSOR_BYTES or any(ref.numel < 0 for ref in storages.values()):
        raise ArchiveError(f"the checkpoint declares {total} bytes of tensors, more than the "
                           f"{MAX_TENSOR_BYTES >> 30} GiB this reader accepts")


def _storage_array(raw: bytes, dtype: np.dtype, byteorder: str) -> np.ndarray:
    """Raw storage bytes in the given byte order as a 1-D array in native order."""
    stored = np.frombuffer(raw, dtype=dtype.newbyteorder("<" if byteorder == "little" else ">"))
    return stored.astype(dtype.newbyteorder("="), copy=False)


def _unpickle(file: BinaryIO) -> tuple[object, dict[str, _StorageRef]]:
    """The object in the next pickle, with tensors as references, and the storages it names."""
    unpickler = _RestrictedUnpickler(file)
    try:
        tree = unpickler.load()
    except ArchiveError:
        raise
    except Exception as error:  # a damaged pickle fails in many ways; all mean "not a readable archive"
        raise ArchiveError(f"unreadable pickle: {type(error).__name__}: {error}") from error
    return tree, unpickler.storages


def _unpickle_plain(file: BinaryIO) -> object:
    """The next pickle of the legacy header, which may name no storage."""
    tree, storages = _unpickle(file)
    if storages:
        raise ArchiveError("a legacy header pickle names a storage")
    return tree


def _materialize(tree: object, storages: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Flatten the unpickled object to dotted names and cut every tensor out of its storage."""
    refs: dict[str, _TensorRef] = {}
    _collect(tree, "", refs)
    return {name: _cut(ref, storages[ref.storage.key]) for name, ref in refs.items()}


def _collect(node: object, prefix: str, out: dict[str, _TensorRef]) -> None:
    """Walk dicts, lists, tuples and ScriptObjects, recording each tensor under its dotted path."""
    if isinstance(node, _TensorRef):
        out[prefix] = node
    elif isinstance(node, ScriptObject):
        _collect(node.attributes, prefix, out)
    elif isinstance(node, dict):
        for key, value in node.items():
            _collect(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            _collect(value, f"{prefix}.{index}" if prefix else str(index), out)


def _cut(ref: _TensorRef, storage: np.ndarray) -> np.ndarray:
    """The tensor as a contiguous array, after checking its shape, strides and offset stay in the storage."""
    shape, stride = ref.shape, ref.stride
    if len(shape) != len(stride) or any(n < 0 for n in shape) or any(s < 0 for s in stride):
        raise ArchiveError(f"bad tensor geometry: size {shape}, stride {stride}")
    start = ref.offset
    if 0 in shape:
        return np.zeros(shape, dtype=storage.dtype)
    last = start + sum((n - 1) * s for n, s in zip(shape, stride, strict=True))
    if start < 0 or last >= storage.size:
        raise ArchiveError(f"tensor (offset {ref.offset}, size {shape}, stride {stride}) "
                                f"reaches outside its storage {ref.storage.key} of {storage.size} elements")
    view = np.lib.stride_tricks.as_strided(storage[start:], shape=shape,
                                           strides=[s * storage.itemsize for s in stride], writeable=False)
    return np.array(view, order="C")


def _as_int(value: object) -> int:
    """A pickled integer, refusing anything else (bool included)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArchiveError(f"expected an integer in the tensor description, got {value!r:.40}")
    return value


def _as_ints(value: object) -> tuple[int, ...]:
    """A pickled tuple or list of integers (a tensor's size or stride)."""
    if not isinstance(value, (tuple, list)):
        raise ArchiveError(f"expected a tuple of integers, got {value!r:.40}")
    return tuple(_as_int(item) for item in value)
