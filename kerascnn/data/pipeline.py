"""The tf.data pipeline: raw pixels in, batches of raw pixels at the model's size out.

Normalisation is not done here: it is the model's first layer, so the same model works
on whatever the pipeline (or a deployed client) feeds it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from kerascnn.data.sources import Split


def build_dataset(
    split: Split,
    *,
    image_size: Sequence[int],
    channels: int,
    batch_size: int,
    training: bool,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of ``(images, labels)`` with images float32 in 0-255, resized to ``image_size``.

    Resizing and channel conversion run in parallel with ``AUTOTUNE`` and are cached, since
    they are deterministic; the training split is then reshuffled every epoch under ``seed``
    and every split is prefetched.
    """
    images = np.asarray(split.images)
    labels = np.asarray(split.labels, dtype="int64")
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    convert = image_converter(image_size, channels)
    dataset = dataset.map(
        lambda image, label: (convert(image), label), num_parallel_calls=tf.data.AUTOTUNE
    )
    dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


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
    split: Split, *, image_size: Sequence[int], channels: int, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A split as numpy arrays at the model's size (raw 0-255 float32 pixels, labels)."""
    if limit is not None:
        split = Split(split.images[:limit], split.labels[:limit])
    dataset = build_dataset(
        split, image_size=image_size, channels=channels, batch_size=256, training=False
    )
    images, labels = [], []
    for batch_images, batch_labels in dataset.as_numpy_iterator():
        images.append(batch_images)
        labels.append(batch_labels)
    return np.concatenate(images), np.concatenate(labels)
