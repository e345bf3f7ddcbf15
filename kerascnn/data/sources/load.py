"""One door to every source: a registered name, a scheme, or a path."""

from __future__ import annotations

import os
from pathlib import Path

from kerascnn.data.sources.arrays import npz_file
from kerascnn.data.sources.base import DATASETS, Dataset
from kerascnn.data.sources.folder import image_folder
from kerascnn.errors import MissingFileError, UnknownNameError


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
    found = DATASETS.find(name)
    if found is not None:
        source, argument = found
        return source(argument, strict=strict, label_offset=label_offset)
    path = Path(name).expanduser()
    looks_like_path = os.sep in name or name.startswith(".") or path.suffix == ".npz"
    if path.is_dir():
        return image_folder(path, strict=strict)
    if path.is_file() and path.suffix == ".npz":
        return npz_file(path)
    if looks_like_path:
        raise MissingFileError(f"dataset path not found: {name} (a directory or a .npz file)")
    raise UnknownNameError(DATASETS.unknown_message(name))  # with the closest registered names


def check_dataset_name(name: str) -> None:
    """Cheap early check for ``train``: a registered name, an existing path or a scheme."""
    if DATASETS.find(name) is not None or Path(name).expanduser().exists():
        return
    load_dataset(name)  # raises the right error
