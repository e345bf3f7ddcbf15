"""The tf.data pipeline: raw pixels in, batches of raw pixels at the model's size out.

Normalisation is not done here: it is the model's first layer, so the same model works
on whatever the pipeline (or a deployed client) feeds it.

Order: decode (files, in parallel) -> channels -> the recipe's deterministic base view ->
cache (when it fits in memory) -> shuffle -> random augmentation (in parallel, stateless
under the seed) -> batch -> mixup/cutmix -> prefetch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from kerascnn.data import ops
from kerascnn.data.sources import Split

# Decoded data is cached in memory when it takes at most this share of the machine's memory.
CACHE_MEMORY_SHARE = 0.25


def build_dataset(
    split: Split,
    *,
    image_size: Sequence[int],
    channels: int,
    batch_size: int,
    training: bool,
    seed: int = 0,
    augmentation: str = "none",
    crop_fraction: float | None = None,
    lighting: ops.Op | None = None,
    num_classes: int | None = None,
    mixup: float = 0.0,
    cutmix: float = 0.0,
    cache: bool | None = None,
    deterministic: bool = True,
    shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """Batches of ``(images, labels)`` with images float32 in 0-255 at ``image_size``.

    Args:
        augmentation: a recipe in ``ops.RECIPES``; its random ops run on the training split
            only, its evaluation view (crop fraction) on the others.
        crop_fraction: evaluation centre crop, overriding the recipe's.
        lighting: the PCA lighting op for recipes that use it (default: ImageNet's).
        num_classes: labels become one-hot vectors of this length (needed with mixing).
        mixup, cutmix: Beta(alpha, alpha) parameters of batch-level mixing (0 = off),
            training split only.
        cache: cache the decoded base views (None: when they fit in memory).
        deterministic: element order independent of thread timing (reproducible under
            ``seed``); False lets parallel maps emit whatever is ready first.
        shard: ``(num_workers, worker_index)`` keeps one worker's share of the examples.
    """
    height, width = (int(s) for s in image_size)
    recipe = ops.RECIPES.get(augmentation)
    if training:
        base = ops.base_op(height, width, recipe.base_scale)
    else:
        fraction = crop_fraction if crop_fraction is not None else recipe.crop_fraction
        base = ops.base_op(height, width, None, fraction)

    def prepare(image):
        image = convert_channels(tf.cast(image, tf.float32), channels)
        return tf.clip_by_value(base(image), 0.0, 255.0)

    if cache is None:
        cache = fits_in_memory(
            split, height, width, channels, recipe.base_scale if training else None
        )
    # Without a cache, a stream's file names are shuffled before decoding (cheap); otherwise
    # the decoded examples are shuffled after the cache.
    source_shuffled = training and not cache and not split.in_memory
    dataset = examples(split, source_shuffled, seed)
    if shard is not None:
        dataset = dataset.shard(*shard)
    dataset = dataset.map(
        lambda image, label: (prepare(image), label), num_parallel_calls=tf.data.AUTOTUNE
    )
    if cache:
        dataset = dataset.cache()
    if training and not source_shuffled:
        dataset = dataset.shuffle(min(len(split), 50_000), seed=seed, reshuffle_each_iteration=True)
    if training and recipe.name != "none":
        dataset = augmented(dataset, recipe.training_op(height, width, lighting), seed)
    if num_classes is not None:
        dataset = dataset.map(lambda image, label: (image, tf.one_hot(label, num_classes)))
    dataset = dataset.batch(batch_size)
    if training and (mixup or cutmix):
        if num_classes is None:
            raise ValueError("mixup and cutmix need num_classes (one-hot labels)")
        dataset = mixed(dataset, mixup, cutmix, seed + 1)
    options = tf.data.Options()
    options.deterministic = deterministic
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def examples(split: Split, shuffled: bool, seed: int) -> tf.data.Dataset:
    """The split's ``(image, label)`` pairs: from memory, or decoded from its stream."""
    if split.in_memory:
        return tf.data.Dataset.from_tensor_slices(
            (np.asarray(split.images), np.asarray(split.labels, dtype="int64"))
        )
    # An undecodable file dropped mid-epoch would leave the epoch's length unknown (and
    # Keras warning about running out of data); wrapping round keeps every epoch exactly
    # len(split) examples, so the cardinality is known and no epoch ends early.
    return split.stream(shuffled, seed).repeat().take(len(split))


def augmented(dataset: tf.data.Dataset, random_op: ops.Op, seed: int) -> tf.data.Dataset:
    """Each image through ``random_op`` with its own stateless seed, drawn under ``seed``."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip((dataset, seeds)).map(
        lambda pair, s: (random_op(pair[0], tf.cast(s, tf.int32)), pair[1]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def mixed(dataset: tf.data.Dataset, mixup: float, cutmix: float, seed: int) -> tf.data.Dataset:
    """Batches of one-hot labels mixed by mixup and/or cutmix (alpha 0 = off); with both,
    each batch gets one of them, as timm does."""
    mixers = [make(alpha) for make, alpha in ((ops.mixup, mixup), (ops.cutmix, cutmix)) if alpha]
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def mix(batch, s):
        images, labels = batch
        s = tf.cast(s, tf.int32)
        if len(mixers) == 1:
            return mixers[0](images, labels, s)
        pick = tf.random.stateless_uniform([], s, 0, 2, dtype=tf.int32)
        return tf.cond(
            pick == 0,
            lambda: mixers[0](images, labels, s),
            lambda: mixers[1](images, labels, s),
        )

    return tf.data.Dataset.zip((dataset, batch_seeds)).map(mix, num_parallel_calls=tf.data.AUTOTUNE)


def fits_in_memory(
    split: Split, height: int, width: int, channels: int, base_scale: float | None
) -> bool:
    """Whether the split's cached base views (float32) fit in CACHE_MEMORY_SHARE of memory."""
    side = max(height, width) * (base_scale or 1.0)
    aspect = 4 / 3 if base_scale else 1.0  # a typical photograph's longer side
    needed = len(split) * side * side * aspect * channels * 4
    return needed <= CACHE_MEMORY_SHARE * (machine_memory() or 4 << 30)


def machine_memory() -> int | None:
    """This machine's physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def image_converter(image_size: Sequence[int], channels: int):
    """A graph-safe function: one raw image -> float32 (height, width, channels), 0-255."""
    height, width = (int(s) for s in image_size)

    def convert(image: tf.Tensor) -> tf.Tensor:
        image = tf.cast(image, tf.float32)
        image = convert_channels(image, channels)
        if image.shape[0] != height or image.shape[1] != width:
            image = tf.image.resize(image, (height, width), method="bilinear", antialias=True)
        return tf.clip_by_value(image, 0.0, 255.0)

    return convert


def convert_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """Grayscale <-> RGB; an alpha channel is dropped."""
    have = image.shape[-1]
    if have == channels:
        return image
    if have == 4:
        image, have = image[..., :3], 3
    if have == 1 and channels == 3:
        return tf.image.grayscale_to_rgb(image)
    if have == 3 and channels == 1:
        return tf.image.rgb_to_grayscale(image)
    if have == channels:
        return image
    raise ValueError(f"cannot convert {have}-channel images to {channels} channels")


def split_arrays(
    split: Split,
    *,
    image_size: Sequence[int],
    channels: int,
    limit: int | None = None,
    crop_fraction: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A split as numpy arrays at the model's size (raw 0-255 float32 pixels, labels)."""
    if limit is not None:
        split = split.take(limit)
    dataset = build_dataset(
        split,
        image_size=image_size,
        channels=channels,
        batch_size=256,
        training=False,
        crop_fraction=crop_fraction,
        cache=False,
    )
    images, labels = [], []
    for batch_images, batch_labels in dataset.as_numpy_iterator():
        images.append(batch_images)
        labels.append(batch_labels)
    if not images:
        return np.zeros((0, *image_size, channels), "float32"), np.zeros((0,), "int64")
    return np.concatenate(images), np.concatenate(labels)
