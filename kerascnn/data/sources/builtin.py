"""The built-in datasets: the UCI digits bundled with scikit-learn, and MNIST, Fashion-MNIST,
CIFAR-10 and CIFAR-100 from Keras's dataset cache (CIFAR's pickled batches read with a
restricted unpickler)."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import keras
import numpy as np
from sklearn.datasets import load_digits

from kerascnn.data.sources.arrays import from_arrays, read_npz
from kerascnn.data.sources.base import (
    DATASETS,
    SPLIT_SEED,
    TEST_FRACTION,
    VALIDATION_FRACTION,
    Dataset,
    Split,
    stratified_split,
)
from kerascnn.errors import InvalidArgumentError, MissingFileError, first_line


@DATASETS.register("digits")
def digits() -> Dataset:
    """The UCI handwritten digits bundled with scikit-learn: 1,797 8x8 grayscale images of
    the digits 0-9 with intensities 0-16, rescaled here to raw 0-255 pixels. No network."""
    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype("uint8")[..., np.newaxis]
    labels = bunch.target.astype("int64")
    train, validation, test = stratified_split(
        labels, (VALIDATION_FRACTION, TEST_FRACTION), seed=SPLIT_SEED
    )
    return Dataset(
        name="digits",
        class_names=tuple(str(d) for d in range(10)),
        train=Split(images[train], labels[train]),
        validation=Split(images[validation], labels[validation]),
        test=Split(images[test], labels[test]),
        description="UCI handwritten digits (scikit-learn), 8x8 grayscale, 10 classes",
    )


KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


def _keras_home() -> Path:
    """Where Keras keeps its cache: ``$KERAS_HOME``, else ``~/.keras``."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def keras_cache_file(relative: str, origin: str, *, extract: bool = False, **kwargs) -> Path:
    """A file in Keras's dataset cache (``$KERAS_HOME/datasets``, else ``~/.keras/datasets``),
    downloaded with ``keras.utils.get_file`` the first time. A file already in the cache is
    used as it is (offline), without the hash check that would re-download it."""
    home = _keras_home()
    path = home / "datasets" / relative
    if path.exists():
        return path
    subdir, _, fname = ("datasets/" + relative).rpartition("/")
    try:
        fetched = keras.utils.get_file(
            fname,
            origin=origin,
            cache_dir=str(home),
            cache_subdir=subdir,
            extract=extract,
            **kwargs,
        )
    except Exception as error:  # no network, a proxy, a full disk: one line for the user
        # Quoted (!r), as this message has always quoted the error's first line.
        raise MissingFileError(
            f"{relative} is not in the Keras cache ({home / 'datasets'}) and could not be "
            f"downloaded from {origin}: {first_line(error)!r}"
        ) from None
    return Path(fetched)


@DATASETS.register("mnist")
def mnist() -> Dataset:
    """MNIST (LeCun et al. 1998): 60,000 + 10,000 28x28 grayscale digits, Keras's mnist.npz."""
    path = keras_cache_file("mnist.npz", KERAS_ORIGIN + "mnist.npz")
    return read_npz(path, "mnist", tuple(str(d) for d in range(10)), "MNIST, 28x28 grayscale")


FASHION_CLASSES = (
    "t-shirt/top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip


@DATASETS.register("fashion_mnist")
def fashion_mnist() -> Dataset:
    """Fashion-MNIST (Xiao et al. 2017), read from Keras's cache of the gzipped IDX files."""

    def idx(name: str, offset: int) -> np.ndarray:
        path = keras_cache_file(f"fashion-mnist/{name}", KERAS_ORIGIN + name)
        with gzip.open(path, "rb") as file:
            return np.frombuffer(file.read(), np.uint8, offset=offset)

    x_train = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    y_train = idx("train-labels-idx1-ubyte.gz", 8)
    x_test = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    y_test = idx("t10k-labels-idx1-ubyte.gz", 8)
    return from_arrays(
        "fashion_mnist", FASHION_CLASSES, x_train, y_train, x_test, y_test,
        "Fashion-MNIST, 28x28 grayscale",
    )  # fmt: skip


CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def _cifar_directory(name: str, inner: str) -> Path:
    """Keras 3.4+ extracts into ``<name>-target/<inner>``; Keras 3.3 into ``<inner>``."""
    home = _keras_home() / "datasets"
    if (home / inner).is_dir():
        return home / inner
    origin = f"https://www.cs.toronto.edu/~kriz/{name}.tar.gz"
    return keras_cache_file(f"{inner}-target", origin, extract=True) / inner


@DATASETS.register("cifar10")
def cifar10() -> Dataset:
    """CIFAR-10 (Krizhevsky 2009): 50,000 + 10,000 32x32 colour images, 10 classes, read from
    Keras's cache of the python batches with a restricted unpickler (numpy arrays only)."""
    folder = _cifar_directory("cifar-10-python", "cifar-10-batches-py")
    parts = [read_cifar_batch(folder / f"data_batch_{i}", b"labels") for i in range(1, 6)]
    x_test, y_test = read_cifar_batch(folder / "test_batch", b"labels")
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    meta = folder / "batches.meta"
    names = CIFAR10_CLASSES
    if meta.is_file():
        names = tuple(n.decode() for n in _restricted_load(meta)[b"label_names"])
    return from_arrays("cifar10", names, x_train, y_train, x_test, y_test, "CIFAR-10, 32x32")


@DATASETS.register("cifar100")
def cifar100() -> Dataset:
    """CIFAR-100 (Krizhevsky 2009), its 100 fine labels."""
    folder = _cifar_directory("cifar-100-python", "cifar-100-python")
    x_train, y_train = read_cifar_batch(folder / "train", b"fine_labels")
    x_test, y_test = read_cifar_batch(folder / "test", b"fine_labels")
    meta = folder / "meta"
    if meta.is_file():
        names = tuple(n.decode() for n in _restricted_load(meta)[b"fine_label_names"])
    else:
        names = tuple(str(i) for i in range(100))
    return from_arrays("cifar100", names, x_train, y_train, x_test, y_test, "CIFAR-100, 32x32")


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR's batch files hold: dicts, lists, bytes and numpy arrays.
    Any other global (``os.system`` ...) is refused, so a tampered file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(text,
        # "latin1"): it only turns a string into bytes.
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def _restricted_load(path: Path) -> dict:
    if not path.is_file():
        raise MissingFileError(f"CIFAR batch file not found: {path}")
    try:
        with open(path, "rb") as file:
            data = RestrictedUnpickler(file, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise InvalidArgumentError(f"{path} is not a CIFAR batch file: {error}") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{path} is not a CIFAR batch file")
    return data


def read_cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch: (N, 32, 32, 3) uint8 images and labels."""
    data = _restricted_load(path)
    try:
        pixels = np.asarray(data[b"data"], dtype=np.uint8)
        labels = np.asarray(data[label_key], dtype="int64")
    except KeyError as error:
        raise InvalidArgumentError(f"{path} has no {error.args[0]!r} entry") from None
    return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels
