"""Dataset readers. Each returns integer labels already split into train, validation and
test, and raw 0-255 pixels: in memory (uint8 arrays, for small datasets) or as a stream of
images decoded inside tf.data (image folders, TFRecord shards, TFDS), so a large dataset is
never decoded into memory up front.

``load_dataset(name)`` takes a registered name (``digits``, ``mnist``, ``fashion_mnist``,
``cifar10``, ``cifar100``), a directory of images, a ``.npz`` file, ``tfrecord:GLOB`` or
``tfds:NAME``. Everything a user can get wrong (a missing path, an empty class folder, a label
out of range, arrays of different lengths, TFRecords without the expected features) is refused
here, before any training, with a one-line ``KerasCNNError``.
"""

from __future__ import annotations

import gzip
import os
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerascnn.errors import InvalidArgumentError, MissingFileError
from kerascnn.registry import Registry

# The embedded dataset's split: fixed, so every run and every test sees the same images.
SPLIT_SEED = 0
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
# Image folders without train/ and val/ subfolders, and sources with only a train and a
# test split, are split with these fractions (stratified, SPLIT_SEED).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


@dataclass(frozen=True)
class Split:
    """One split: ``labels`` always in memory; pixels either in ``images`` (uint8,
    (N, height, width, channels), raw 0-255) or produced by ``stream``.

    ``stream(shuffle, seed)`` returns a ``tf.data.Dataset`` of ``(image, label)`` pairs, the
    image uint8 (height, width, channels) of any size, decoded in parallel; with ``shuffle``
    the order changes every epoch under ``seed`` (file names are shuffled before decoding).
    ``decoded_bytes`` estimates the decoded size, so the pipeline knows what fits in memory.
    """

    images: np.ndarray | None
    labels: np.ndarray  # int64, (N,)
    stream: Callable | None = field(default=None, compare=False)
    channels_hint: int = 3
    decoded_bytes: int = 0

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_memory(self) -> bool:
        return self.images is not None

    @property
    def channels(self) -> int:
        return int(self.images.shape[-1]) if self.in_memory else self.channels_hint

    def spread(self, count: int) -> Split:
        """About ``count`` examples evenly spaced through the split (every k-th), so a sample
        of a class-sorted split still covers every class."""
        step = max(1, -(-len(self) // max(count, 1)))
        if step == 1:
            return self
        if self.in_memory:
            return Split(self.images[::step], self.labels[::step])
        stream = self.stream
        return Split(
            None,
            self.labels[::step],
            stream=lambda shuffle=False, seed=0: stream(False, seed).shard(step, 0),
            channels_hint=self.channels_hint,
            decoded_bytes=self.decoded_bytes // step,
        )

    def take(self, count: int) -> Split:
        """The first ``count`` examples."""
        if self.in_memory:
            return Split(self.images[:count], self.labels[:count])
        stream = self.stream
        return Split(
            None,
            self.labels[:count],
            stream=lambda shuffle=False, seed=0: stream(False, seed).take(count),
            channels_hint=self.channels_hint,
            decoded_bytes=self.decoded_bytes * count // max(len(self), 1),
        )


@dataclass(frozen=True)
class Dataset:
    name: str
    class_names: tuple[str, ...]
    train: Split
    validation: Split
    test: Split
    description: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return self.train.channels

    def split(self, name: str) -> Split:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]


DATASETS: Registry[Callable[..., Dataset]] = Registry("dataset")


def load_dataset(name: str, *, strict: bool = False, label_offset: int = 1) -> Dataset:
    """Load a dataset: a registered name (``"digits"``, ``"cifar10"`` ...), a directory of
    images, a ``.npz`` file, ``"tfrecord:GLOB"`` or ``"tfds:NAME"``.

    Args:
        strict: an unreadable file in an image folder is an error instead of being skipped.
        label_offset: subtracted from TFRecord labels (ImageNet's start at 1).

    Raises:
        UnknownNameError: an unknown name that is not a path either.
        MissingFileError: a path that does not exist, or an empty class folder.
        InvalidArgumentError: bad contents (labels out of range, mismatched arrays, missing
            TFRecord features, unreadable files with ``strict``).
    """
    scheme, _, rest = name.partition(":")
    if rest and scheme in SCHEMES:
        return SCHEMES[scheme](rest, strict=strict, label_offset=label_offset)
    if name in DATASETS.names():
        return DATASETS.get(name)()
    path = Path(name).expanduser()
    looks_like_path = os.sep in name or name.startswith(".") or path.suffix == ".npz"
    if path.is_dir():
        return image_folder(path, strict=strict)
    if path.is_file() and path.suffix == ".npz":
        return npz_file(path)
    if looks_like_path:
        raise MissingFileError(f"dataset path not found: {name} (a directory or a .npz file)")
    DATASETS.get(name)  # raises with the closest registered names
    raise AssertionError("unreachable")


def check_dataset_name(name: str) -> None:
    """Cheap early check for ``train``: a registered name, an existing path or a scheme."""
    scheme, _, rest = name.partition(":")
    if rest and scheme in SCHEMES:
        return
    if name in DATASETS.names() or Path(name).expanduser().exists():
        return
    load_dataset(name)  # raises the right error


# -- registered datasets ------------------------------------------------------------------


@DATASETS.register("digits")
def digits() -> Dataset:
    """The UCI handwritten digits bundled with scikit-learn: 1,797 8x8 grayscale images of
    the digits 0-9 with intensities 0-16, rescaled here to raw 0-255 pixels. No network."""
    from sklearn.datasets import load_digits

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


def keras_cache_file(relative: str, origin: str, *, extract: bool = False, **kwargs) -> Path:
    """A file in Keras's dataset cache (``$KERAS_HOME/datasets``, else ``~/.keras/datasets``),
    downloaded with ``keras.utils.get_file`` the first time. A file already in the cache is
    used as it is (offline), without the hash check that would re-download it."""
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    path = home / "datasets" / relative
    if path.exists():
        return path
    import keras

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
        raise MissingFileError(
            f"{relative} is not in the Keras cache ({home / 'datasets'}) and could not be "
            f"downloaded from {origin}: {str(error).splitlines()[0] if str(error) else error!r}"
        ) from None
    return Path(fetched)


@DATASETS.register("mnist")
def mnist() -> Dataset:
    """MNIST (LeCun et al. 1998): 60,000 + 10,000 28x28 grayscale digits, Keras's mnist.npz."""
    path = keras_cache_file("mnist.npz", KERAS_ORIGIN + "mnist.npz")
    return _from_npz(path, "mnist", tuple(str(d) for d in range(10)), "MNIST, 28x28 grayscale")


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
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets"
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


# -- arrays: .npz files and the registered array datasets ---------------------------------


def npz_file(path: Path) -> Dataset:
    """A ``.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test`` (read without pickle);
    optional ``x_val``/``y_val`` and ``class_names``."""
    return _from_npz(path, str(path.resolve()), None, f"arrays from {path}")


def _from_npz(path: Path, name: str, class_names, description: str) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            data = {key: arrays[key] for key in arrays.files}
    except (ValueError, OSError) as error:
        raise InvalidArgumentError(f"{path} is not a readable .npz file: {error}") from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in data]
    if missing:
        raise InvalidArgumentError(f"{path} lacks {', '.join(missing)}; it has {sorted(data)}")
    if class_names is None and "class_names" in data:
        class_names = tuple(str(c) for c in data["class_names"])
    validation = (data["x_val"], data["y_val"]) if "x_val" in data and "y_val" in data else None
    return from_arrays(
        name,
        class_names,
        data["x_train"],
        data["y_train"],
        data["x_test"],
        data["y_test"],
        description,
        validation=validation,
        source=str(path),
    )


def _as_images(x: np.ndarray, what: str, source: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise InvalidArgumentError(
            f"{source}: {what} must be (N, height, width[, 1|3|4]) images; shape {x.shape}"
        )
    if x.dtype != np.uint8:
        if x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 255):
            raise InvalidArgumentError(f"{source}: {what} pixels must lie in 0-255")
        x = np.round(x).astype(np.uint8)
    return x


def from_arrays(
    name: str,
    class_names,
    x_train,
    y_train,
    x_test,
    y_test,
    description: str = "",
    *,
    validation=None,
    source: str | None = None,
) -> Dataset:
    """A dataset from train and test arrays; the validation split is carved from train
    (stratified, VALIDATION_FRACTION, SPLIT_SEED) unless given."""
    source = source or name
    pairs = {"train": (x_train, y_train), "test": (x_test, y_test)}
    if validation is not None:
        pairs["val"] = validation
    checked = {}
    for split, (x, y) in pairs.items():
        y = np.asarray(y).reshape(-1) if np.ndim(y) == 2 and np.shape(y)[1] == 1 else np.asarray(y)
        if y.ndim != 1 or len(y) != len(x):
            raise InvalidArgumentError(
                f"{source}: x_{split} has {len(x)} images but y_{split} has shape {y.shape}"
            )
        if y.size and not np.issubdtype(y.dtype, np.integer):
            raise InvalidArgumentError(f"{source}: y_{split} must hold integer labels")
        checked[split] = (_as_images(x, f"x_{split}", source), y.astype("int64"))
    num_classes = (
        len(class_names)
        if class_names is not None
        else 1 + max(int(y.max(initial=0)) for _, y in checked.values())
    )
    for split, (_, y) in checked.items():
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise InvalidArgumentError(
                f"{source}: y_{split} has labels from {y.min()} to {y.max()}, outside "
                f"0-{num_classes - 1} ({num_classes} classes)"
            )
    if class_names is None:
        class_names = tuple(str(i) for i in range(num_classes))
    x_train, y_train = checked["train"]
    if "val" in checked:
        train, validation_split = Split(x_train, y_train), Split(*checked["val"])
    else:
        keep, held = stratified_split(y_train, (VALIDATION_FRACTION,), seed=SPLIT_SEED)
        train = Split(x_train[keep], y_train[keep])
        validation_split = Split(x_train[held], y_train[held])
    return Dataset(
        name=name,
        class_names=tuple(class_names),
        train=train,
        validation=validation_split,
        test=Split(*checked["test"]),
        description=description,
    )


# -- image folders ------------------------------------------------------------------------

# What a whole file starts and ends with; a file that does not is skipped as unreadable. This
# catches stray files and truncated downloads without decoding anything up front.
_JPEG = (b"\xff\xd8\xff", (b"\xff\xd9",))
_SIGNATURES = {
    ".jpg": _JPEG,
    ".jpeg": _JPEG,
    ".png": (b"\x89PNG\r\n\x1a\n", (b"IEND\xaeB`\x82",)),
    ".gif": (b"GIF8", (b";",)),
    ".bmp": (b"BM", ()),
}


def image_file_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole JPEG/PNG/BMP/GIF image file, or None if it looks whole.

    Checks the extension, the format's signature, the end marker (JPEG EOI, PNG IEND, GIF
    trailer; JPEG encoders may pad after EOI, so its last 64 bytes are searched) and BMP's
    declared file size. Decoding errors that slip through are still skipped by the pipeline.
    """
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        return "not an image file"
    try:
        size = path.stat().st_size
        with open(path, "rb") as file:
            head = file.read(16)
            file.seek(max(0, size - 64))
            tail = file.read()
    except OSError as error:
        return f"unreadable ({error.strerror})"
    signature, ends = _SIGNATURES[suffix]
    if suffix in (".jpg", ".jpeg", ".png") and not head.startswith(signature):
        # Files are often misnamed (a PNG saved as .jpg); accept either signature.
        if not (head.startswith(_JPEG[0]) or head.startswith(_SIGNATURES[".png"][0])):
            return "not a JPEG or PNG"
        ends = _JPEG[1] if head.startswith(_JPEG[0]) else _SIGNATURES[".png"][1]
        signature = head[:4]
    if not head.startswith(signature):
        return f"not a {suffix[1:].upper()} file"
    if head.startswith(_JPEG[0]):
        if b"\xff\xd9" not in tail:
            return "truncated"
    elif ends and not tail.endswith(ends[0]):
        return "truncated"
    if suffix == ".bmp" and int.from_bytes(head[2:6], "little") > size:
        return "truncated"
    return None


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _list_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts)
    )


def image_folder(root: Path, *, strict: bool = False) -> Dataset:
    """A folder with one subfolder per class, either inside ``train/`` and ``val/`` (or
    ``validation/``), optional ``test/`` (without it ``val/`` is also the test split, as the
    ImageNet papers report on it), or directly, split deterministically and stratified.

    Files are checked without decoding (signature and end marker); bad ones are skipped and
    counted in one warning line on stderr, or with ``strict`` refused with an error.
    """
    root = Path(root)
    subsets = {p.name: p for p in _class_folders(root)}
    validation_name = next((n for n in ("val", "validation") if n in subsets), None)
    if "train" in subsets and validation_name:
        layout = {"train": subsets["train"], "validation": subsets[validation_name]}
        if "test" in subsets:
            layout["test"] = subsets["test"]
        class_names = tuple(p.name for p in _class_folders(layout["train"]))
    else:
        layout = {"all": root}
        class_names = tuple(subsets)
    if not class_names:
        raise MissingFileError(f"{root} has no class subfolders (one folder per class)")
    index = {name: i for i, name in enumerate(class_names)}
    skipped: list[tuple[Path, str]] = []
    found: dict[str, tuple[list[str], list[int]]] = {}
    for split, folder in layout.items():
        paths, labels = [], []
        for class_folder in _class_folders(folder):
            if class_folder.name not in index:
                raise InvalidArgumentError(
                    f"{class_folder} is not a class of {layout.get('train', root)} "
                    f"(classes: {', '.join(class_names)})"
                )
            good = 0
            for file in _list_files(class_folder):
                problem = image_file_problem(file)
                if problem:
                    skipped.append((file, problem))
                    continue
                paths.append(str(file))
                labels.append(index[class_folder.name])
                good += 1
            if good == 0:
                raise MissingFileError(f"class folder {class_folder} has no readable images")
        found[split] = (paths, labels)
    if skipped:
        report_skipped(root, skipped, strict)
    if "all" in found:
        paths = np.array(found["all"][0])
        labels = np.array(found["all"][1], dtype="int64")
        train, validation, test = stratified_split(
            labels, (VALIDATION_FRACTION, TEST_FRACTION), seed=SPLIT_SEED
        )
        splits = {
            "train": (paths[train], labels[train]),
            "validation": (paths[validation], labels[validation]),
            "test": (paths[test], labels[test]),
        }
    else:
        found.setdefault("test", found["validation"])
        splits = {k: (np.array(v[0]), np.array(v[1], dtype="int64")) for k, v in found.items()}
    return Dataset(
        name=str(root.resolve()),  # saved with the run, so `kerascnn evaluate` finds it again
        class_names=class_names,
        train=file_split(*splits["train"]),
        validation=file_split(*splits["validation"]),
        test=file_split(*splits["test"]),
        description=f"image folder {root}",
    )


def report_skipped(root: Path, skipped: list[tuple[Path, str]], strict: bool) -> None:
    examples = ", ".join(f"{p.relative_to(root)} ({why})" for p, why in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    message = f"{len(skipped)} unreadable or non-image file(s) in {root}: {examples}{more}"
    if strict:
        raise InvalidArgumentError(f"{message} (--strict)")
    print(f"Warning: skipped {message}", file=sys.stderr)


# JPEG decodes to roughly 10x its file size; the pipeline caches what fits in memory.
DECODED_TO_FILE_RATIO = 10


def file_split(paths: np.ndarray, labels: np.ndarray) -> Split:
    """A split of image files, decoded to RGB inside tf.data (grayscale, palette, RGBA and
    CMYK JPEG all come out as 3 channels; the pipeline converts to the model's channels)."""
    paths = np.asarray(paths, dtype=str)
    labels = np.asarray(labels, dtype="int64")
    size = sum(os.path.getsize(p) for p in paths)

    def stream(shuffle: bool = False, seed: int = 0):
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
        if shuffle:
            dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.map(
            lambda path, label: (decode_image_file(path), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        # A file that passed the header check but still fails to decode is dropped, never
        # ending an epoch with an exception.
        return dataset.ignore_errors()

    return Split(
        None, labels, stream=stream, channels_hint=3, decoded_bytes=size * DECODED_TO_FILE_RATIO
    )


def decode_image_file(path):
    """Graph-safe: a JPEG/PNG/BMP/GIF file -> uint8 (height, width, 3)."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


# -- TFRecord shards (ImageNet's build_imagenet_data layout) ------------------------------

TFRECORD_FEATURES = ("image/encoded", "image/class/label")


def tfrecord_dataset(pattern: str, *, label_offset: int = 1, **_) -> Dataset:
    """TFRecord shards as TensorFlow's build_imagenet_data.py writes them: ``image/encoded``
    (JPEG), ``image/class/label`` (starting at 1; ``label_offset`` is subtracted) and
    ``image/class/text``. Shards whose names contain ``train`` are the training split, those
    with ``validation`` or ``val`` the validation (and test) split; without that naming the
    records are split stratified. Labels are read once up front to check them."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.expanduser(pattern)))
    if not files:
        raise MissingFileError(f"no TFRecord files match {pattern}")
    groups: dict[str, list[str]] = {}
    for file in files:
        name = Path(file).name.lower()
        group = "train" if "train" in name else "val" if "val" in name else "all"
        groups.setdefault(group, []).append(file)
    if "all" in groups or "train" not in groups or "val" not in groups:
        groups = {"all": files}
    scanned = {group: _scan_records(shards, label_offset) for group, shards in groups.items()}
    texts: dict[int, str] = {}
    for _, labels, names in scanned.values():
        for label, text in zip(labels, names, strict=True):
            texts.setdefault(int(label), text)
    num_classes = 1 + max(texts)
    class_names = tuple(texts.get(i) or str(i) for i in range(num_classes))

    def split_of(records: list[str], labels: np.ndarray, chosen: np.ndarray | None) -> Split:
        """The records of ``records`` whose position is in ``chosen`` (all when None)."""
        total = len(labels) if chosen is None else len(chosen)
        mask = None
        if chosen is not None:
            mask = np.zeros(scanned["all"][0], bool)
            mask[chosen] = True
            labels = labels[chosen]

        def stream(shuffle: bool = False, seed: int = 0):
            dataset = tf.data.TFRecordDataset(records)
            if mask is not None:
                keep = tf.constant(mask)
                dataset = dataset.enumerate().filter(lambda i, _: tf.gather(keep, i))
                dataset = dataset.map(lambda _, record: record)
            if shuffle:
                dataset = dataset.shuffle(min(total, 10_000), seed=seed)
            dataset = dataset.map(
                lambda record: _parse_record(record, label_offset),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            return dataset.ignore_errors()

        size = sum(os.path.getsize(r) for r in records) if all(map(os.path.exists, records)) else 0
        share = total / max(1, sum(len(v[1]) for g, v in scanned.items() if groups[g] == records))
        return Split(
            None,
            labels,
            stream=stream,
            channels_hint=3,
            decoded_bytes=int(size * DECODED_TO_FILE_RATIO * share),
        )

    if "all" in scanned:
        _, labels, _ = scanned["all"]
        parts = stratified_split(labels, (VALIDATION_FRACTION, TEST_FRACTION), seed=SPLIT_SEED)
        train, validation, test = (split_of(groups["all"], labels, p) for p in parts)
    else:
        train = split_of(groups["train"], scanned["train"][1], None)
        validation = test = split_of(groups["val"], scanned["val"][1], None)
    return Dataset(
        name=f"tfrecord:{pattern}",
        class_names=class_names,
        train=train,
        validation=validation,
        test=test,
        description=f"TFRecord shards {pattern}",
    )


def _parse_record(record, label_offset: int):
    import tensorflow as tf

    features = tf.io.parse_single_example(
        record,
        {
            "image/encoded": tf.io.FixedLenFeature([], tf.string),
            "image/class/label": tf.io.FixedLenFeature([], tf.int64),
        },
    )
    image = tf.io.decode_image(features["image/encoded"], channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image, features["image/class/label"] - label_offset


def _scan_records(files: list[str], label_offset: int) -> tuple[int, np.ndarray, list[str]]:
    """Read every record's label and class text (not its image) to check them up front."""
    import tensorflow as tf

    labels, texts = [], []
    try:
        for record in tf.data.TFRecordDataset(files):
            example = tf.train.Example.FromString(record.numpy())
            feature = example.features.feature
            missing = [name for name in TFRECORD_FEATURES if name not in feature]
            if missing:
                raise InvalidArgumentError(
                    f"TFRecord {files[0]}...: records lack {', '.join(missing)} (expected the "
                    f"build_imagenet_data layout: image/encoded, image/class/label, "
                    f"image/class/text)"
                )
            labels.append(int(feature["image/class/label"].int64_list.value[0]) - label_offset)
            text = (
                feature["image/class/text"].bytes_list.value
                if "image/class/text" in feature
                else []
            )
            texts.append(text[0].decode("utf-8", "replace") if text else "")
    except tf.errors.OpError as error:
        raise InvalidArgumentError(
            f"cannot read TFRecord files {files[0]}...: {error.message.splitlines()[0]}"
        ) from None
    if not labels:
        raise MissingFileError(f"no records in {', '.join(files)}")
    labels = np.array(labels, dtype="int64")
    if labels.min() < 0:
        raise InvalidArgumentError(
            f"TFRecord labels minus the label offset {label_offset} go down to {labels.min()}; "
            f"labels must start at 0 (use --label-offset 0 for labels starting at 0)"
        )
    return len(labels), labels, texts


# -- TensorFlow Datasets ------------------------------------------------------------------


def tfds_dataset(name: str, **_) -> Dataset:
    """A TensorFlow Datasets dataset already prepared in its data directory (never
    downloaded here: run ``tfds build NAME`` first). Needs ``pip install kerascnn[tfds]``."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise InvalidArgumentError(
            "tfds: datasets need tensorflow-datasets: pip install tensorflow-datasets "
            "(or kerascnn[tfds])"
        ) from None
    try:
        builder = tfds.builder(name)
    except Exception as error:
        raise InvalidArgumentError(f"tfds:{name}: {str(error).splitlines()[0]}") from None
    if not Path(builder.data_dir).exists():
        raise MissingFileError(
            f"tfds:{name} is not prepared in {builder.data_dir}; run `tfds build {name}` first"
        )
    info = builder.info
    label_feature = info.features["label"]
    names = tuple(label_feature.names)
    available = list(info.splits)
    if "train" not in available or "test" not in available and "validation" not in available:
        raise InvalidArgumentError(f"tfds:{name} needs train and test splits; has {available}")
    test_name = "test" if "test" in available else "validation"

    def split_of(split_name: str) -> Split:
        labels = np.array(
            [int(x["label"]) for x in builder.as_dataset(split=split_name).as_numpy_iterator()]
        )

        def stream(shuffle: bool = False, seed: int = 0):
            dataset = builder.as_dataset(split=split_name, shuffle_files=shuffle)
            return dataset.map(lambda x: (x["image"], x["label"]))

        return Split(None, labels, stream=stream, channels_hint=info.features["image"].shape[-1])

    validation_name = "validation" if "validation" in available else test_name
    return Dataset(
        name=f"tfds:{name}",
        class_names=names,
        train=split_of("train"),
        validation=split_of(validation_name),
        test=split_of(test_name),
        description=info.description.splitlines()[0] if info.description else name,
    )


SCHEMES: dict[str, Callable[..., Dataset]] = {"tfrecord": tfrecord_dataset, "tfds": tfds_dataset}


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, ...], seed: int
) -> tuple[np.ndarray, ...]:
    """Indices of a deterministic stratified split: the first part gets what the given
    fractions leave, each further part its fraction of every class. No index is in two parts.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        start = 0
        for i, fraction in enumerate(fractions, start=1):
            count = int(round(fraction * len(members)))
            parts[i].append(members[start : start + count])
            start += count
        parts[0].append(members[start:])
    return tuple(np.sort(np.concatenate(p)) for p in parts)
