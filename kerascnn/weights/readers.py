"""safetensors and PyTorch ``.pth`` checkpoints as ``{name: numpy array}``, torch not needed.

A ``.pth`` file is a pickle, and unpickling runs whatever functions the file names: a
checkpoint from the internet must never be given to ``pickle.load`` or a plain
``torch.load``. ``TensorUnpickler`` admits only the names a state dict needs (an
``OrderedDict``, ``torch._utils._rebuild_tensor_v2``, ``_rebuild_parameter`` and the typed
storages) and rebuilds each tensor itself, from the raw bytes of its storage, as a numpy
array; any other name refuses the whole file before anything it names is looked up. Both
layouts of ``torch.save`` are read: the zip archive (``data.pkl`` and one ``data/<key>``
file per storage, torch 1.6 and later) and the older single stream (magic number, protocol,
system info, the pickle, the storage keys, then each storage prefixed by its element count).

safetensors (the format the Hugging Face hub publishes, timm's ``model.safetensors``) has no
pickle at all: a JSON header and raw little-endian arrays, read with ``safetensors.numpy``.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from kerascnn.errors import InvalidArgumentError, MissingFileError, first_line

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")

# torch's typed storages and the numpy dtype of their elements ("bfloat16" is widened to
# float32 after reading: numpy has no bfloat16).
STORAGE_DTYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}
# torch/serialization.py: the first object of a pre-1.6 (non-zip) torch.save stream.
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
# Keys under which training scripts commonly nest the state dict.
NESTED_STATE_KEYS = ("state_dict", "model", "model_state_dict")


def read_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` or ``.pth``/``.pt``/``.bin`` file, by name.

    Raises:
        MissingFileError: no such file.
        InvalidArgumentError: an unknown suffix, a damaged file, or a pickle that names
            anything but tensors and plain containers (refused, nothing run).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    if path.suffix in CHECKPOINT_SUFFIXES:
        return read_pth(path)
    raise InvalidArgumentError(
        f"{path}: a checkpoint must be a {', '.join(CHECKPOINT_SUFFIXES)} file"
    )


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A safetensors file's tensors (no code is run: the format holds only arrays)."""
    from safetensors import SafetensorError  # deferred: the optional [torchvision] extra
    from safetensors.numpy import load_file

    try:
        return dict(load_file(str(path)))
    except (SafetensorError, OSError, ValueError, TypeError) as error:
        raise InvalidArgumentError(
            f"{path} is not a readable safetensors file: {first_line(error)}"
        ) from None


def read_pth(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A ``torch.save``d state dict, unpickled by ``TensorUnpickler``."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                loaded = _load_zip(archive)
        else:
            with open(path, "rb") as file:
                loaded = _load_legacy(file)
    except Refused as error:
        raise InvalidArgumentError(f"{path}: refused: {error}; nothing in it was run") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        ValueError,
        TypeError,
        struct.error,
        zipfile.BadZipFile,
    ) as error:
        raise InvalidArgumentError(
            f"{path} is not a PyTorch checkpoint: {first_line(error)}"
        ) from None
    return state_dict_of(loaded, path)


class Refused(pickle.UnpicklingError):
    """The pickle names a function or class a state dict has no use for."""


class TensorUnpickler(pickle.Unpickler):
    """Unpickles a state dict and nothing else: ``OrderedDict``s, plain containers and
    tensors, each tensor rebuilt as a numpy array from its storage's bytes.

    ``storages(key, dtype, numel)`` returns the flat array of the storage ``key``.
    """

    def __init__(self, file: BinaryIO, storages):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(STORAGE_DTYPES[name])
        raise Refused(
            f"the pickle names {module}.{name}, which is not a tensor or a plain container"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.60}")
        _, storage_type, key, _location, numel, *view = pid
        if not isinstance(storage_type, StorageType) or any(v is not None for v in view):
            raise pickle.UnpicklingError(f"unsupported storage {pid!r:.60}")
        return self._storages(str(key), storage_type.dtype, int(numel))


class StorageType:
    """What the pickle's ``torch.FloatStorage`` (...) stands for here: an element type."""

    def __init__(self, dtype: str):
        self.dtype = dtype


def _rebuild_tensor(storage, offset, size, stride, *_ignored) -> np.ndarray:
    """``torch._utils._rebuild_tensor_v2``: a view of the storage (a copy where strided)."""
    if isinstance(storage, PendingStorage):
        return PendingTensor(storage.key, (offset, size, stride))
    if not isinstance(storage, np.ndarray):
        raise pickle.UnpicklingError("a tensor without a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    offset = int(offset)
    extent = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1
    if any(n == 0 for n in size):
        return np.zeros(size, storage.dtype)
    if offset < 0 or min(stride, default=0) < 0 or extent > storage.size:
        raise pickle.UnpicklingError("a tensor reaching outside its storage")
    strides = tuple(s * storage.itemsize for s in stride)
    view = np.lib.stride_tricks.as_strided(storage[offset:], size, strides, writeable=False)
    return view if view.flags.c_contiguous else view.copy()  # read-only unless copied


def _rebuild_parameter(data, *_ignored) -> np.ndarray:
    if not isinstance(data, np.ndarray | PendingTensor):
        raise pickle.UnpicklingError("a parameter that is not a tensor")
    return data


def _from_bytes(raw: bytes, dtype: str, numel: int, byteorder: str = "little") -> np.ndarray:
    """A storage's ``numel`` elements from its raw bytes (bfloat16 widened to float32)."""
    if dtype == "bfloat16":
        halves = np.frombuffer(raw, dtype=np.dtype("<u2" if byteorder == "little" else ">u2"))
        return (halves[:numel].astype(np.uint32) << 16).view(np.float32)
    element = np.dtype(dtype).newbyteorder("<" if byteorder == "little" else ">")
    values = np.frombuffer(raw, dtype=element, count=numel)
    return values.astype(values.dtype.newbyteorder("="), copy=False)  # no copy if native


def _load_zip(archive: zipfile.ZipFile) -> Any:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("data.pkl")]
    if len(pickles) != 1:
        raise ValueError("no data.pkl in the archive")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if f"{prefix}byteorder" in names:
        byteorder = archive.read(f"{prefix}byteorder").decode().strip()

    def storages(key: str, dtype: str, numel: int) -> np.ndarray:
        return _from_bytes(archive.read(f"{prefix}data/{key}"), dtype, numel, byteorder)

    with archive.open(pickles[0]) as file:
        return TensorUnpickler(io.BytesIO(file.read()), storages).load()


def _load_legacy(file: BinaryIO) -> Any:
    """torch.save's pre-zip stream: three small pickles, the object, the storage keys, then
    each storage's bytes in key order, each after its element count (int64)."""

    def header(stream):  # numbers, dicts and strings only: no storage may appear
        return TensorUnpickler(stream, _no_storage).load()

    if header(file) != LEGACY_MAGIC_NUMBER:
        raise ValueError("neither a zip archive nor a torch.save stream")
    header(file)  # protocol version
    header(file)  # system info
    dtypes: dict[str, str] = {}

    def storages(key: str, dtype: str, numel: int) -> PendingStorage:
        dtypes[key] = dtype
        return PendingStorage(key)

    loaded = TensorUnpickler(file, storages).load()
    data = {}
    for key in header(file):
        dtype = dtypes[str(key)]
        (count,) = struct.unpack("<q", file.read(8))
        raw = file.read(count * _element_size(dtype))
        data[str(key)] = _from_bytes(raw, dtype, count)
    return _resolve(loaded, data)


def _no_storage(key, dtype, numel):
    raise pickle.UnpicklingError("a storage in a header")


class PendingStorage:
    """A storage of the pre-zip stream, whose bytes come after the pickle."""

    def __init__(self, key: str):
        self.key = key


class PendingTensor:
    """A tensor of a ``PendingStorage``, rebuilt once the storages have been read."""

    def __init__(self, key: str, arguments: tuple):
        self.key, self.arguments = key, arguments


def _resolve(loaded: Any, data: dict[str, np.ndarray]) -> Any:
    if isinstance(loaded, PendingTensor):
        return _rebuild_tensor(data[loaded.key], *loaded.arguments)
    if isinstance(loaded, dict):
        resolved = type(loaded)()
        for key, value in loaded.items():
            resolved[key] = _resolve(value, data)
        return resolved
    return loaded


def _element_size(dtype: str) -> int:
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def state_dict_of(loaded: Any, path: Path) -> dict[str, np.ndarray]:
    """The ``{name: array}`` of what was unpickled: a state dict, or one nested under
    ``state_dict``/``model``; a ``module.`` prefix (``DataParallel``) is dropped."""
    if isinstance(loaded, dict):
        for key in NESTED_STATE_KEYS:
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict):
        raise InvalidArgumentError(f"{path} holds a {type(loaded).__name__}, not a state dict")
    tensors = {str(k): v for k, v in loaded.items() if isinstance(v, np.ndarray)}
    if not tensors:
        raise InvalidArgumentError(f"{path} holds no tensors")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    return tensors
