"""Datasets from arrays: ``.npz`` files, and the checks every in-memory dataset goes through."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerascnn.data.sources.base import (
    SPLIT_SEED,
    VALIDATION_FRACTION,
    Dataset,
    Split,
    stratified_split,
)
from kerascnn.errors import InvalidArgumentError


def npz_file(path: Path) -> Dataset:
    """A ``.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test`` (read without pickle);
    optional ``x_val``/``y_val`` and ``class_names``."""
    return read_npz(path, str(path.resolve()), None, f"arrays from {path}")


def read_npz(path: Path, name: str, class_names, description: str) -> Dataset:
    """The arrays in ``path`` as the dataset ``name``; with ``class_names`` None, the file's
    own ``class_names`` if it has them, else the labels numbered."""
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
