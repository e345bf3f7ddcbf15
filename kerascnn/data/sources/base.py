"""What every reader shares: a ``Split`` and a ``Dataset``, the one registry of named
datasets and schemes, the deterministic stratified split and its fractions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kerascnn.registry import Registry

# The embedded dataset's split: fixed, so every run and every test sees the same images.
SPLIT_SEED = 0
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
# Image folders without train/ and val/ subfolders, and sources with only a train and a
# test split, are split with these fractions (stratified, SPLIT_SEED).

# JPEG decodes to roughly 10x its file size; the pipeline caches what fits in memory.
DECODED_TO_FILE_RATIO = 10


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


# The splits of every dataset, in this order.
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Dataset:
    """A dataset's three splits (``SPLITS``) and its class names, in label order."""

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
        """One of ``SPLITS`` by name."""
        if name not in SPLITS:
            raise KeyError(f"no split {name!r}; splits: {', '.join(SPLITS)}")
        return getattr(self, name)


@dataclass(frozen=True)
class Source:
    """A registry entry: ``load`` builds the dataset. A named dataset (``digits``) takes no
    argument; a scheme (``tfrecord``) reads what follows its ``NAME:``, which ``argument``
    names (``GLOB``), and the reader options."""

    load: Callable[..., Dataset]
    argument: str | None = None

    @property
    def takes_argument(self) -> bool:
        return self.argument is not None

    def __call__(self, argument: str | None = None, **options) -> Dataset:
        """The dataset; only a scheme gets ``argument`` and ``options`` (``strict``,
        ``label_offset``)."""
        return self.load(argument, **options) if self.takes_argument else self.load()


class SourceRegistry(Registry[Source]):
    """Named datasets and schemes in one registry. ``names()`` lists the named datasets (what
    a dataset name alone may be), ``schemes()`` the ``NAME:`` prefixes; an unknown name is
    matched against the named datasets only, since a scheme alone is not a dataset."""

    def register(self, name: str, *, argument: str | None = None) -> Callable:
        """Decorator: ``load`` becomes the named dataset ``name`` or, given ``argument``, the
        scheme ``name:ARGUMENT``. Returns ``load`` itself, still a plain function."""

        def decorator(load: Callable[..., Dataset]) -> Callable[..., Dataset]:
            self.add(name, Source(load, argument))
            return load

        return decorator

    def names(self, pattern: str | None = None) -> list[str]:
        return [n for n in super().names(pattern) if not self.get(n).takes_argument]

    def schemes(self) -> list[str]:
        return [n for n in super().names() if self.get(n).takes_argument]

    def find(self, name: str) -> tuple[Source, str | None] | None:
        """The entry ``name`` asks for and its argument: ``SCHEME:ARGUMENT`` with a non-empty
        argument, or a named dataset (argument None); None when it is neither."""
        scheme, _, argument = name.partition(":")
        if argument and scheme in self.schemes():
            return self.get(scheme), argument
        if name in self.names():
            return self.get(name), None
        return None

    def unknown_message(self, name: object) -> str:
        # Worded by a registry of the named datasets alone, so the suggestions never offer a
        # scheme without its argument.
        named: Registry[Source] = Registry(self.kind)
        for each in self.names():
            named.add(each, self.get(each))
        return named.unknown_message(name)


DATASETS = SourceRegistry("dataset")


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
