"""Dataset readers. Each returns raw uint8 pixels (N, height, width, channels) and integer
labels, already split into train, validation and test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kerascnn.registry import Registry

# The embedded dataset's split: fixed, so every run and every test sees the same images.
SPLIT_SEED = 0
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8, (N, height, width, channels), raw 0-255 pixels
    labels: np.ndarray  # int64, (N,)

    def __len__(self) -> int:
        return len(self.labels)


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
        return int(self.train.images.shape[-1])

    def split(self, name: str) -> Split:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]


DATASETS: Registry[Callable[[], Dataset]] = Registry("dataset")


def load_dataset(name: str) -> Dataset:
    """Load a registered dataset by name (``"digits"``).

    Raises:
        ValueError: for an unknown name, listing the closest registered names.
    """
    return DATASETS.get(name)()


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
